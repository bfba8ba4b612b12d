"""What dlexp keeps in MLflow, and the only package that imports mlflow (in `process` and `runs`).

- `store`: where the store is (runs/mlflow.db or a URI), secrets masked; imports no MLflow;
- `recorder`: the training process's side of the tracking process;
- `process`: the MLflow client on the store, and the tracking process that writes a run;
- `runs`: reading runs back (`dlexp runs`, `diagnose`, `report`, `--resume`);
- `rediagnose`: the diagnosis of a stored run, as `dlexp diagnose RUN` prints it;
- `outcomes`: each run's per-example outcomes and split fingerprints, one small artifact (numpy only);
- `compare`: two stored runs read back and compared (`dlexp compare`).
"""
