# One image for every Safe Passage process (Rasa server, action server, gateways, jobs).
# Rasa 3.6 needs Python 3.10.
FROM python:3.10-slim
ENV PYTHONUNBUFFERED=1 RASA_TELEMETRY_ENABLED=false TF_CPP_MIN_LOG_LEVEL=3 PYTHONPATH=/app
WORKDIR /app
# Tesseract reads the screenshots of offers she sends (bot/offer/ocr.py): the 11 languages (Tagalog reads with fil).
# Without them a photo gets the kind "please type" reply.
RUN apt-get update && apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-tha tesseract-ocr-mya \
      tesseract-ocr-khm tesseract-ocr-vie tesseract-ocr-ind tesseract-ocr-fil \
      tesseract-ocr-chi-sim tesseract-ocr-rus tesseract-ocr-ukr tesseract-ocr-ron \
    && rm -rf /var/lib/apt/lists/*
COPY requirements.txt constraints.txt ./
RUN pip install --no-cache-dir -r requirements.txt -c constraints.txt
COPY . .
# the model is part of the image: every Rasa replica serves the same one
RUN python -m bot train
RUN useradd --system --uid 10001 safepassage && mkdir -p /app/var && chown -R safepassage /app/var
USER safepassage
