"""Output: the terminal (`terminal`, rich), the page of `dlexp report` (`html`), plots (`plots`, matplotlib)."""
