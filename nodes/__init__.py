"""ComfyUI nodes for InterDyn (thin adapters over the ``interdyn`` library)."""
NODE_CLASS_MAPPINGS: dict = {}
NODE_DISPLAY_NAME_MAPPINGS: dict = {}
