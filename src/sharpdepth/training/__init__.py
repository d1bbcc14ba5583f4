"""Ground-truth-free training of the SharpDepth sharpener (``docs/method.md``, "Training")."""
