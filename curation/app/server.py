"""The HTTP face of the app: a page to drop photos on, and a JSON API for programs.

    GET  /                    the page
    POST /api/predict         multipart field `file`: the answer (see curation/app/__init__.py)
    POST /api/feedback        multipart `file` and `label`: "wrong, it is <label>"
    GET  /api/reference/{id}  a thumbnail of a dataset image the answer names (nearest, copy_of);
                              ?full=true: the file itself (the page's /?example={id} classifies it)
    GET  /api/health          the model and how long start-up took

FastAPI rather than Gradio: Gradio 6 pins Pillow below 13 and would downgrade the stack's Pillow
(../shared/docs/stack.md). Bad input gets a 4xx with a message; an unexpected failure a 500 with
the error's type, never a traceback; the server stays up either way.
"""

import io
import logging
import mimetypes
from pathlib import Path

from fastapi import FastAPI, File, Form, Request, UploadFile  # annotations FastAPI resolves: no postponed ones here
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from curation.app.inputs import MAX_UPLOAD_BYTES, BadInput, read_photo

log = logging.getLogger("curation.app")
PAGE = Path(__file__).with_name("page.html")


def create_app(predictor, feedback, *, max_bytes: int = MAX_UPLOAD_BYTES) -> FastAPI:
    app = FastAPI(title=f"{predictor.dataset} classifier", docs_url="/api/docs", redoc_url=None)
    references = predictor.references.table.set_index("sample_id")

    @app.exception_handler(BadInput)
    async def bad_input(_request: Request, exc: BadInput):
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception):
        log.exception("request failed")
        return JSONResponse({"error": f"internal error ({type(exc).__name__}); the server is still up"},
                            status_code=500)

    async def _read(upload: UploadFile | None) -> bytes:
        if upload is None:
            raise BadInput(400, "no file: send the photo as the multipart field 'file'")
        data = await upload.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise BadInput(413, f"the upload exceeds the limit of {max_bytes / 1e6:.0f} MB")
        return data

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return PAGE.read_text().replace("{{DATASET}}", predictor.dataset).replace(
            "{{CLASSES}}", ",".join(predictor.classes))

    @app.post("/api/predict")
    async def predict(file: UploadFile | None = File(None)):
        # in a worker thread: the server keeps answering (health, the page) while a photo is judged
        return await run_in_threadpool(predictor.predict, await _read(file))

    @app.post("/api/feedback")
    async def store_feedback(request: Request, file: UploadFile | None = File(None), label: str = Form("")):
        photo = read_photo(await _read(file), max_bytes=max_bytes)
        if label not in predictor.classes:
            raise BadInput(400, f"label must be one of {', '.join(predictor.classes)}, not {label!r}")
        answer = await run_in_threadpool(predictor.predict_photo, photo)
        client = request.client.host if request.client else ""
        return await run_in_threadpool(feedback.store, photo, label, predicted=answer["label"],
                                       filename=file.filename or "", client=client)

    @app.get("/api/reference/{sample_id}")
    def reference(sample_id: str, full: bool = False):
        """A dataset image the answers name, as a thumbnail, or as its file (`full`: the page's examples)."""
        if sample_id not in references.index:
            return JSONResponse({"error": f"no dataset image {sample_id!r}"}, status_code=404)
        path = predictor.root / references.loc[sample_id, "path"]
        if full:
            return Response(path.read_bytes(), media_type=mimetypes.guess_type(path.name)[0] or "application/octet-stream")
        return Response(_thumbnail(path), media_type="image/jpeg")

    @app.get("/api/health")
    def health():
        return {"status": "ok", "dataset": predictor.dataset, "started_seconds": predictor.started_seconds,
                "model": predictor.model_info(), "references": len(references),
                "code": str(Path(__file__).resolve().parents[1])}  # which curation package serves

    return app


def _thumbnail(path: Path, size: int = 160) -> bytes:
    from curation.image_io import load_rgb

    image = load_rgb(path)
    image.thumbnail((size, size))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def serve(app, host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False)
