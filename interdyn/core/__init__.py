"""The model core: sampling (EDM Euler with the per-frame CFG ramp and the control window), the control frames
(masks and renders -> the branch's input), loading and saving (SVD folders, single files, control branches, the
built-in model), tiny models with the real structure (``tiny``) and InterDyn inside ComfyUI's own SVD graph
(``native``). The networks themselves are :mod:`interdyn.models`; single-file SVD checkpoints are
:mod:`interdyn.single_file`."""
