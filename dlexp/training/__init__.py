"""Everything that trains: the Hydra entry of `dlexp train` (`run`), the jobs it launches and their results
(`launch`), the Lightning fit and the eval pass (`fit`), signals (`signals`), seed groups and learning curves
(`groups`). torch and Lightning are imported by `fit` only, once a job runs."""
