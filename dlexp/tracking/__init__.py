"""What dlexp keeps in MLflow, and the only package that imports mlflow.

- `store`: where the store is (runs/mlflow.db or a URI), secrets masked; imports no MLflow;
- `recorder`: the training process's side of the tracking process;
- `client`: the MLflow client on the store (opening it, the experiment, the names of what is kept);
- `process`: the tracking process that writes a run (`python -m dlexp.tracking`);
- `runs`: reading runs back (`dlexp runs`, `diagnose`, `report`, `--resume`);
- `rediagnose`: the diagnosis of a stored run, as `dlexp diagnose RUN` prints it;
- `outcomes`: each run's per-example outcomes and split fingerprints, one small artifact (numpy only);
- `compare`: two stored runs read back and compared (`dlexp compare`).
"""
