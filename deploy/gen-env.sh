#!/bin/sh
# Prints a deploy/.env with fresh random secrets for compose.yaml:
#   ./gen-env.sh > .env && chmod 600 .env
set -eu
rand() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
cat <<ENV
POSTGRES_PASSWORD=$(rand 16)
MINIO_ROOT_USER=minio-root
MINIO_ROOT_PASSWORD=$(rand 16)
STORAGE_S3_ACCESS_KEY=storage-service
STORAGE_S3_SECRET_KEY=$(rand 20)
JWT_SECRET=$(rand 32)
AUDIT_KEY=$(head -c 32 /dev/urandom | base64)
GRAFANA_ADMIN_PASSWORD=$(rand 16)
ENV
