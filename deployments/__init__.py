"""Deployments: what runs when. `deployments.serve` serves them from one process (the default,
on the embedded SQLite server); `prefect.yaml` declares the same for work pools."""
