"""Hydra sweeper plugin `hydra/sweeper=dlexp_jobs`: a given list of jobs, each its own override list, through
whatever launcher is configured (basic, joblib, ray). Hydra finds plugins only in the `hydra_plugins`
package; the jobs and their results are dlexp.training.launch's business."""
