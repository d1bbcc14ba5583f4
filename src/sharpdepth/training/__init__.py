"""Ground-truth-free training of the SharpDepth sharpener (METHOD.md "Training")."""
