#!/bin/sh
# One-shot MinIO set-up for compose.yaml (runs in the minio/mc image): creates the buckets with
# versioning, a MinIO user for the storage service limited to those buckets by
# minio-policy.json, and the buckets' CORS rules for CORS_ALLOWED_ORIGINS. Safe to run again:
# every step is idempotent.
set -eu

: "${MINIO_URL:?}" "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}"
: "${STORAGE_S3_ACCESS_KEY:?}" "${STORAGE_S3_SECRET_KEY:?}"
BUCKETS=${BUCKETS:-users companies projects}
POLICY_FILE=${POLICY_FILE:-/init/minio-policy.json}

mc alias set store "$MINIO_URL" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"

for bucket in $BUCKETS; do
    mc mb --ignore-existing "store/${bucket}"
    # Versioning keeps overwritten and deleted objects: the basis of object backups
    # (docs/operations.md). The service itself never overwrites an object.
    mc version enable "store/${bucket}"
done

# The service's own credentials: read, write and delete objects in the three buckets, nothing
# else (no bucket creation, no admin API).
mc admin user add store "$STORAGE_S3_ACCESS_KEY" "$STORAGE_S3_SECRET_KEY"
mc admin policy create store storage-service "$POLICY_FILE"
mc admin policy attach store storage-service --user "$STORAGE_S3_ACCESS_KEY" \
    || echo "policy storage-service already attached to ${STORAGE_S3_ACCESS_KEY}"

# Browser front-ends PUT and GET presigned URLs straight to MinIO: the buckets let the same web
# origins do so as the service does (CORS_ALLOWED_ORIGINS, comma-separated exact origins).
CORS_ALLOWED_ORIGINS=${CORS_ALLOWED_ORIGINS:-}
if [ -n "$CORS_ALLOWED_ORIGINS" ]; then
    cors_file=$(mktemp)
    {
        echo '<CORSConfiguration><CORSRule>'
        echo "$CORS_ALLOWED_ORIGINS" | tr ',' '\n' | while read -r origin; do
            [ -n "$origin" ] && echo "<AllowedOrigin>${origin}</AllowedOrigin>"
        done
        echo '<AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod><AllowedMethod>HEAD</AllowedMethod>'
        echo '<AllowedHeader>*</AllowedHeader><ExposeHeader>ETag</ExposeHeader>'
        echo '<MaxAgeSeconds>600</MaxAgeSeconds></CORSRule></CORSConfiguration>'
    } >"$cors_file"
    for bucket in $BUCKETS; do
        mc cors set "store/${bucket}" "$cors_file"
    done
    rm -f "$cors_file"
    echo "minio-init: CORS rules for ${CORS_ALLOWED_ORIGINS} on ${BUCKETS}"
fi

echo "minio-init: buckets ${BUCKETS} ready for ${STORAGE_S3_ACCESS_KEY}"
