"""Training the bundled nano family (``sharpdepth nano train RECIPE``): the recipes
(:mod:`~sharpdepth.training.nano.recipes`) and their small resumable loop
(:mod:`~sharpdepth.training.nano.loop`). ``docs/nano.md`` records how they were chosen."""
