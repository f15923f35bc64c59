"""Training: one run config (``config``), five objectives, one loop with resume, data
parallelism, learning-rate schedule and EMA; teacher pairs, weight averaging, loss curves."""
