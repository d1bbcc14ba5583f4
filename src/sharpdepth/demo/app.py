"""The gradio app of ``sharpdepth demo``.

gradio is imported inside the functions here (never at module import), and
:func:`require_gradio` turns its absence into a :class:`~sharpdepth.errors.MissingDependencyError`
that says how to install it. Analytics are switched off before gradio is imported; the
page needs nothing outside the machine it is served from.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

from sharpdepth.demo.limits import DEFAULT_HOST, DemoLimits
from sharpdepth.demo.runner import DemoInputError, DemoRunner
from sharpdepth.errors import MissingDependencyError, SharpDepthError

LOGGER = logging.getLogger(__name__)

#: ``elem_id`` of the components, for styling and for the browser test.
ELEM_IDS = {
    "image": "input-image",
    "run": "run-button",
    "slider": "depth-slider",
    "legend": "depth-legend",
    "confidence": "confidence-map",
    "cloud_metric": "cloud-metric",
    "cloud_depth": "cloud-sharpdepth",
    "downloads": "downloads",
    "summary": "summary",
}

#: The message for an upload Pillow cannot open.
NOT_AN_IMAGE = (
    "This file is not an image the demo can read: upload a JPEG, PNG, WebP, BMP or TIFF photo."
)


def too_many_pixels(limits: DemoLimits) -> str:
    """The message for an upload with too many pixels (as for one refused by the runner)."""
    return (
        f"The image has too many pixels; the demo accepts up to {limits.max_megapixels:g} "
        "megapixels."
    )


_INTRO = """\
# SharpDepth: sharp metric depth from one image

Upload a photo (or pick an example). A metric depth model gives depth in metres with
blurry edges; SharpDepth's sharpener gives it the crisp edges of a diffusion depth prior.
Drag the slider to compare the two on one colour scale (near = red, far = blue), turn the
point clouds to see the difference at depth edges, and download the depth in metres.
"""


def require_gradio() -> ModuleType:
    """Import gradio with analytics off.

    Raises:
        MissingDependencyError: gradio is not installed; the message says how to get it.
    """
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio
    except ImportError as exc:
        raise MissingDependencyError(
            'the demo needs gradio: pip install "sharpdepth[demo]"'
        ) from exc
    return gradio


def example_photos() -> list[Path]:
    """The bundled example photos (``sharpdepth/demo/examples/*.jpg``), sorted by name."""
    folder = Path(str(resources.files("sharpdepth").joinpath("demo", "examples")))
    return sorted(folder.glob("*.jpg"))


def photo_input(limits: DemoLimits | None = None, **kwargs: Any) -> Any:
    """A ``gradio.Image`` input whose undecodable uploads raise a clear ``gradio.Error``.

    gradio opens the upload with Pillow before the handler runs; a file that is not an
    image would otherwise surface as gradio's internal processing error. The component's
    ``preprocess`` is wrapped on the instance (a subclass would make gradio write a
    ``.pyi`` stub next to this module), so the page shows the stock image component.

    A decompression bomb (more pixels than Pillow agrees to decode) gets the message of
    any upload with too many pixels, without a server traceback.

    Args:
        limits: the demo's limits, for the message on too many pixels.
        **kwargs: arguments of ``gradio.Image``.
    """
    gr = require_gradio()
    bomb_message = too_many_pixels(limits or DemoLimits())
    component = gr.Image(**kwargs)
    preprocess = component.preprocess

    def checked_preprocess(payload: Any) -> Any:
        from PIL import Image

        try:
            return preprocess(payload)
        except gr.Error:
            raise
        except Image.DecompressionBombError as exc:
            raise gr.Error(bomb_message, title="Bad upload", print_exception=False) from exc
        except Exception as exc:  # Pillow fails in many ways (OSError, SyntaxError, ...)
            LOGGER.debug("upload refused by its image component", exc_info=True)
            raise gr.Error(NOT_AN_IMAGE, title="Bad upload", print_exception=False) from exc

    component.preprocess = checked_preprocess
    return component


def make_handler(runner: DemoRunner) -> Callable[..., tuple[Any, ...]]:
    """The function the run button calls: inputs of the form -> values of the outputs.

    Refused uploads and model failures become ``gradio.Error`` with a one-line message.
    """
    gr = require_gradio()

    def estimate_depth(
        image_path: str | None,
        focal_px: float | None,
        fov_deg: float | None,
        drop_edges: bool,
        progress: Any = gr.Progress(),  # noqa: B008 - gradio's documented way to get progress
    ) -> tuple[Any, ...]:
        if not image_path:
            raise gr.Error(
                "Upload a photo first, or pick one of the examples.",
                title="No image",
                print_exception=False,
            )

        def report(fraction: float, message: str) -> None:
            progress(fraction, desc=message)

        try:
            result = runner.run(image_path, focal_px, fov_deg, bool(drop_edges), progress=report)
        except DemoInputError as exc:
            message = f"{str(exc)[:1].upper()}{str(exc)[1:]}."
            raise gr.Error(message, title="Bad upload", print_exception=False) from exc
        except SharpDepthError as exc:
            raise gr.Error(f"Depth estimation failed: {exc}", title="Error") from exc
        return (
            (result.metric_rgb, result.depth_rgb),
            result.depth_legend,
            result.confidence,
            str(result.glb_metric),
            str(result.glb_depth),
            [str(p) for p in result.downloads],
            result.summary,
        )

    return estimate_depth


def build_app(runner: DemoRunner, model_info: str = "", examples: bool = True) -> Any:
    """The demo's ``gradio.Blocks`` (not launched).

    Args:
        runner: does the work for each upload.
        model_info: one line of Markdown naming the models (shown under the title).
        examples: offer the bundled example photos.
    """
    gr = require_gradio()
    limits = runner.limits
    with gr.Blocks(
        title="SharpDepth demo",
        analytics_enabled=False,
        delete_cache=(1800, 3600),  # gradio's copies of the outputs: hourly, like the runs
    ) as app:
        gr.Markdown(_INTRO + (f"\n{model_info}\n" if model_info else ""))
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                image = photo_input(
                    limits,
                    type="filepath",
                    image_mode=None,  # hand over the file as uploaded (EXIF kept)
                    sources=["upload", "clipboard"],
                    label="Photo",
                    elem_id=ELEM_IDS["image"],
                    height=300,
                )
                with gr.Accordion("Known camera (optional)", open=False):
                    focal = gr.Number(
                        label="Focal length (pixels of the uploaded image)",
                        value=None,
                        minimum=0,
                    )
                    fov = gr.Number(
                        label="Horizontal field of view (degrees)",
                        value=None,
                        minimum=0,
                        maximum=179,
                    )
                drop_edges = gr.Checkbox(
                    value=False,
                    label="Drop flying pixels at depth edges",
                    info="3D views and PLY: remove points between foreground and background",
                )
                run = gr.Button("Estimate depth", variant="primary", elem_id=ELEM_IDS["run"])
                gr.Markdown(
                    f"Images up to {limits.max_upload_mb:g} MB and "
                    f"{limits.max_megapixels:g} megapixels; larger than "
                    f"{limits.max_side} px on the longer side are downscaled."
                )
                if examples and example_photos():
                    gr.Examples(
                        examples=[[str(p)] for p in example_photos()],
                        inputs=[image],
                        label="Example photos",
                    )
            with gr.Column(scale=2):
                slider = gr.ImageSlider(
                    label="Metric model (left) | SharpDepth (right), same colour scale",
                    type="numpy",
                    format="png",
                    interactive=False,
                    elem_id=ELEM_IDS["slider"],
                    max_height=520,
                )
                with gr.Row():
                    legend = gr.Image(
                        label="SharpDepth depth (metres)",
                        type="numpy",
                        format="png",
                        interactive=False,
                        elem_id=ELEM_IDS["legend"],
                        buttons=[],  # corner buttons would hide the colour bar's top label
                    )
                    confidence = gr.Image(
                        label="Confidence (1 - gate)",
                        type="numpy",
                        format="png",
                        interactive=False,
                        elem_id=ELEM_IDS["confidence"],
                        buttons=[],  # corner buttons would hide the colour bar's top label
                    )
        with gr.Row():
            cloud_metric = gr.Model3D(
                label="3D: metric model's depth",
                clear_color=(0.12, 0.12, 0.14, 1.0),
                height=420,
                interactive=False,
                elem_id=ELEM_IDS["cloud_metric"],
            )
            cloud_depth = gr.Model3D(
                label="3D: SharpDepth's depth",
                clear_color=(0.12, 0.12, 0.14, 1.0),
                height=420,
                interactive=False,
                elem_id=ELEM_IDS["cloud_depth"],
            )
        with gr.Row():
            downloads = gr.File(
                label="Downloads: depth .npy (metres), 16-bit PNG (millimetres), PLY, JSON",
                file_count="multiple",
                interactive=False,
                elem_id=ELEM_IDS["downloads"],
            )
            summary = gr.Markdown(elem_id=ELEM_IDS["summary"])
        run.click(
            make_handler(runner),
            inputs=[image, focal, fov, drop_edges],
            outputs=[slider, legend, confidence, cloud_metric, cloud_depth, downloads, summary],
            concurrency_limit=1,
        )
    return app


def launch_app(
    app: Any,
    host: str = DEFAULT_HOST,
    port: int | None = None,
    share: bool = False,
    limits: DemoLimits | None = None,
    block: bool = True,
) -> str:
    """Serve ``app``; returns its local URL (once the server is up when ``block=False``).

    Args:
        app: from :func:`build_app`.
        host: address to bind; ``127.0.0.1`` (default) keeps it on this machine,
            ``0.0.0.0`` serves the network.
        port: TCP port; ``None`` = the first free one from 7860.
        share: also ask gradio for a public share link (needs the internet).
        limits: the upload size limit is enforced by the server too.
        block: serve until interrupted; ``False`` returns at once (tests).
    """
    limits = limits or DemoLimits()
    app.queue(default_concurrency_limit=1, max_size=16)
    _, local_url, _ = app.launch(
        server_name=host,
        server_port=port,
        share=share,
        max_file_size=limits.max_upload_bytes,
        show_error=True,
        ssr_mode=False,
        prevent_thread_lock=True,
        quiet=False,
        footer_links=[],
    )
    if block:
        app.block_thread()
    return str(local_url)
