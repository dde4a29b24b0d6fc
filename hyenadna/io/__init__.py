"""Files: our save format and released/-hf checkpoint imports, the restricted unpickler, the hub
and bundled models, atomic writes, each command's file plan, and the HDF5 and VCF outputs."""
