"""What every layer leans on: input checks and their messages (``validation``, ``errors``), safe writing and
loading (``safe_output``, ``safe_load``) and processes (``distributed``). It imports nothing else of the library."""
