"""The networks: the diffusion depth model's steps (:mod:`~sharpdepth.models.diffusion`),
its checkpoints (:mod:`~sharpdepth.models.checkpoints`) and the metric depth models
(:mod:`~sharpdepth.models.metric`)."""
