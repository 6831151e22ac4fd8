# One image for every Safe Passage process (Rasa server, action server, gateways, jobs).
# Rasa 3.6 needs Python 3.10.
FROM python:3.10-slim
ENV PYTHONUNBUFFERED=1 RASA_TELEMETRY_ENABLED=false TF_CPP_MIN_LOG_LEVEL=3 PYTHONPATH=/app
WORKDIR /app
COPY requirements.txt constraints.txt ./
RUN pip install --no-cache-dir -r requirements.txt -c constraints.txt
COPY . .
# the model is part of the image: every Rasa replica serves the same one
RUN python -m bot train
RUN useradd --system --uid 10001 safepassage && mkdir -p /app/var && chown -R safepassage /app/var
USER safepassage
