"""What users run: the ``interdyn`` command line (``cli``; training's commands come in through ``plugins``), one clip
or a manifest of them (``generation``, ``batch``), the built-in demo, the physics probes and their contact sheets."""
