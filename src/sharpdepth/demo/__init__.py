"""``sharpdepth demo``: a browser demo of the pipeline (gradio, in the ``demo`` extra).

* :mod:`sharpdepth.demo.runner`: what happens to one upload (limits, pipeline, files),
  with no user interface;
* :mod:`sharpdepth.demo.visuals`: depth pairs on one colour scale, colour bars, confidence;
* :mod:`sharpdepth.demo.glb`: point clouds as binary glTF for the 3D view;
* :mod:`sharpdepth.demo.app`: the gradio app; gradio is imported only there, lazily, so
  the package works without the extra.
"""
