"""Data in and out of the model: the synthetic collision world (``synthetic``), drawn drives (``shapes``,
``trajectory``), SAM2 masks (``segmentation``) and reading and writing videos (``video_io``)."""
