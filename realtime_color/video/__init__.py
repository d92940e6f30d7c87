"""The job: the generic runner, the colorizing stages, temporal smoothing, segments, cameras, the cluster."""
