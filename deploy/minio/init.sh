#!/bin/sh
# One-shot MinIO setup for docker-compose (service `minio-init`, image minio/mc). Idempotent: runs
# at every `docker-compose up` and changes nothing that is already in place.
#   1. the bucket S3_BUCKET, with a 1-day expiry for message objects left behind and an expiry of
#      MINIO_QUARANTINE_EXPIRE_DAYS (default 30, 0 = no rule) for quarantine/ — a backstop: the
#      config service's sweep enforces the policy's quarantine.retentionDays exactly. The rule is
#      only created here, never changed: after raising the retention above it, edit it with
#      `mc ilm rule edit` (or remove it and re-run this script);
#   2. unless the services use the root credentials, a user S3_ACCESS_KEY / S3_SECRET_KEY with a
#      policy that allows only that bucket (the services never get MinIO's admin rights).
# Environment: MINIO_URL (default http://minio:9000), MINIO_ROOT_USER, MINIO_ROOT_PASSWORD,
# S3_BUCKET, S3_ACCESS_KEY, S3_SECRET_KEY, MINIO_QUARANTINE_EXPIRE_DAYS.
set -eu
: "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}" "${S3_BUCKET:?}" "${S3_ACCESS_KEY:?}" "${S3_SECRET_KEY:?}"
url="${MINIO_URL:-http://minio:9000}"

mc alias set mw "$url" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"
mc mb --ignore-existing "mw/$S3_BUCKET"
# Objects live for seconds to minutes (the gateways delete them when the session is done). A
# lifecycle rule removes what a crashed gateway left behind; adding it again on a re-run is fine.
if ! mc ilm rule ls "mw/$S3_BUCKET" 2>/dev/null | grep -q 'msg/'; then
  mc ilm rule add --prefix "msg/" --expire-days 1 "mw/$S3_BUCKET"
fi
quarantine_days="${MINIO_QUARANTINE_EXPIRE_DAYS:-30}"
if [ "$quarantine_days" != "0" ] && ! mc ilm rule ls "mw/$S3_BUCKET" 2>/dev/null | grep -q 'quarantine/'; then
  mc ilm rule add --prefix "quarantine/" --expire-days "$quarantine_days" "mw/$S3_BUCKET"
fi

if [ "$S3_ACCESS_KEY" = "$MINIO_ROOT_USER" ]; then
  echo "S3_ACCESS_KEY is the MinIO root user: no separate service user"
  exit 0
fi

policy=/tmp/mailwarden-bucket-policy.json
printf '%s\n' \
  '{' \
  '  "Version": "2012-10-17",' \
  '  "Statement": [' \
  "    { \"Effect\": \"Allow\", \"Action\": [\"s3:GetBucketLocation\", \"s3:ListBucket\", \"s3:ListBucketMultipartUploads\"], \"Resource\": [\"arn:aws:s3:::$S3_BUCKET\"] }," \
  "    { \"Effect\": \"Allow\", \"Action\": [\"s3:GetObject\", \"s3:PutObject\", \"s3:DeleteObject\", \"s3:AbortMultipartUpload\", \"s3:ListMultipartUploadParts\"], \"Resource\": [\"arn:aws:s3:::$S3_BUCKET/*\"] }" \
  '  ]' \
  '}' > "$policy"

mc admin policy create mw mailwarden-bucket "$policy"
mc admin user add mw "$S3_ACCESS_KEY" "$S3_SECRET_KEY"
# Attaching a policy that is already attached is refused: that is the normal case on a re-run.
if ! out=$(mc admin policy attach mw mailwarden-bucket --user "$S3_ACCESS_KEY" 2>&1); then
  case "$out" in
    *already*) echo "policy mailwarden-bucket already attached to $S3_ACCESS_KEY" ;;
    *) echo "$out" >&2; exit 1 ;;
  esac
fi
echo "bucket $S3_BUCKET ready for $S3_ACCESS_KEY"
