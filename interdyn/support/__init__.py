"""What every layer leans on: input checks and their messages (``validation``, ``errors``), safe writing and
loading (``safe_output``, ``safe_load``), processes (``distributed``) and tiny models for tests (``testing``)."""
