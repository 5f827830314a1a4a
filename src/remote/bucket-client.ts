/**
 * The bucket tier's object-storage client: the one file that imports `@aws-sdk/client-s3`. The
 * rest of the code talks to `BucketClient`, a handful of object operations in our own types,
 * and reads failures through `bucketProblem`, which names the input to fix.
 *
 * Credentials come from the SDK's default chain (environment, web identity as
 * aws-actions/configure-aws-credentials sets it up, shared files, instance role). Checksums are
 * computed and checked only where the service requires them: S3-compatible services (R2, GCS,
 * MinIO, Ceph, Garage) differ in the newer flexible checksums, and the tier verifies every byte
 * it downloads by its content digest anyway.
 *
 * The SDK is a third of the bundle: it is loaded when a client first sends (a chunk of its
 * own), so that the steps of a workflow without a bucket do not parse and start it.
 */
import { errorMessage } from '../errors.js';
import { inParallel } from '../util/parallel.js';

/** Where the tier lives and how to reach it (the `bucket*` inputs, parsed). */
export interface BucketConfig {
  /** The bucket's name (from `bucket: s3://name/prefix`). */
  readonly name: string;
  /** Every object key starts with this ('' or ending in '/'). */
  readonly prefix: string;
  /** `bucket-endpoint`: a URL for services other than AWS S3; '' for AWS. */
  readonly endpoint: string;
  /** `bucket-region`; '' takes AWS_REGION / AWS_DEFAULT_REGION, else us-east-1. */
  readonly region: string;
  /** `bucket-path-style`: https://host/bucket/key rather than https://bucket.host/key. */
  readonly pathStyle: boolean;
}

export interface BucketObject {
  readonly key: string;
  readonly size: number;
  /** Milliseconds since the epoch (the service's Last-Modified). */
  readonly lastModified: number;
}

export interface BucketClient {
  /** The object's size and time, or undefined when there is none. */
  head(key: string, signal: AbortSignal): Promise<BucketObject | undefined>;
  /** The object's bytes as they arrive, or undefined when there is none. */
  get(
    key: string,
    signal: AbortSignal,
  ): Promise<{ size: number; body: AsyncIterable<Uint8Array> } | undefined>;
  put(key: string, body: Buffer, signal: AbortSignal): Promise<void>;
  /** One object from parts (each `partBytes` but the last), `concurrency` parts at once. */
  putMultipart(
    key: string,
    size: number,
    partBytes: number,
    readPart: (offset: number, length: number) => Promise<Buffer>,
    concurrency: number,
    signal: AbortSignal,
  ): Promise<void>;
  /** Gives the object a new Last-Modified (a copy onto itself): no bytes travel. */
  refresh(key: string, signal: AbortSignal): Promise<void>;
  /** Every object under `prefix` (all pages). */
  list(prefix: string, signal: AbortSignal): Promise<BucketObject[]>;
  remove(key: string, signal: AbortSignal): Promise<void>;
}

export function regionOf(config: BucketConfig, env = process.env): string {
  return (
    config.region || env['AWS_REGION']?.trim() || env['AWS_DEFAULT_REGION']?.trim() || 'us-east-1'
  );
}

/** Where the error says the configuration is wrong: the message names the input to fix. */
export function bucketProblem(err: unknown, config: BucketConfig): string {
  const e = err as { name?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const name = e.name ?? '';
  const code = e.code ?? (err as { cause?: { code?: string } }).cause?.code ?? '';
  const status = e.$metadata?.httpStatusCode;
  const where = `s3://${config.name}/${config.prefix}`;
  if (name === 'CredentialsProviderError' || (/credential/i.test(errorMessage(err)) && !status)) {
    return (
      `no AWS credentials for the 'bucket' input (${where}): set AWS_ACCESS_KEY_ID and ` +
      'AWS_SECRET_ACCESS_KEY, use aws-actions/configure-aws-credentials, or run where an ' +
      'instance role is available'
    );
  }
  if (name === 'NoSuchBucket') {
    return `the bucket '${config.name}' does not exist (the 'bucket' input, s3://name/prefix; check the name and 'bucket-endpoint')`;
  }
  if (['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied', 'Forbidden'].includes(name)) {
    return `the bucket '${config.name}' refused these AWS credentials (${name}): give them s3:GetObject, s3:PutObject, s3:ListBucket (and s3:DeleteObject for gc) on ${where}`;
  }
  if (
    [
      'PermanentRedirect',
      'AuthorizationHeaderMalformed',
      'IllegalLocationConstraintException',
    ].includes(name)
  ) {
    return `the bucket '${config.name}' is in another region than '${regionOf(config)}' (set 'bucket-region')`;
  }
  if (['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ECONNRESET'].includes(code)) {
    return (
      `cannot reach ${config.endpoint || 'AWS S3'} (${code}; check 'bucket-endpoint'` +
      `${config.endpoint ? " and 'bucket-path-style'" : ''})`
    );
  }
  return `${name || 'error'}${status ? ` (HTTP ${status})` : ''}: ${errorMessage(err)}`;
}

function notFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NotFound' || e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404;
}

type Sdk = typeof import('@aws-sdk/client-s3');
let sdkLoad: Promise<Sdk> | undefined;

export function openBucketClient(config: BucketConfig): BucketClient {
  let opened: Promise<{ sdk: Sdk; s3: InstanceType<Sdk['S3Client']> }> | undefined;
  /** The SDK and this client's S3Client, made on the first call. */
  const open = (): NonNullable<typeof opened> =>
    (opened ??= (sdkLoad ??= import('@aws-sdk/client-s3')).then((sdk) => ({
      sdk,
      s3: new sdk.S3Client({
        region: regionOf(config),
        ...(config.endpoint ? { endpoint: config.endpoint } : {}),
        forcePathStyle: config.pathStyle,
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
        maxAttempts: 3,
        // A connection that cannot be made, or a socket idle this long, fails the attempt.
        requestHandler: { connectionTimeout: 10_000, requestTimeout: 60_000 },
      }),
    })));
  const Bucket = config.name;
  const opts = (signal: AbortSignal): { abortSignal: AbortSignal } => ({ abortSignal: signal });

  return {
    async head(key, signal) {
      const { sdk, s3 } = await open();
      try {
        const r = await s3.send(new sdk.HeadObjectCommand({ Bucket, Key: key }), opts(signal));
        return { key, size: r.ContentLength ?? 0, lastModified: r.LastModified?.getTime() ?? 0 };
      } catch (err) {
        if (notFound(err) && (err as { name?: string }).name !== 'NoSuchBucket') return undefined;
        throw err;
      }
    },

    async get(key, signal) {
      const { sdk, s3 } = await open();
      try {
        const r = await s3.send(new sdk.GetObjectCommand({ Bucket, Key: key }), opts(signal));
        const body = r.Body as AsyncIterable<Uint8Array> | undefined;
        if (body === undefined) return undefined;
        return { size: r.ContentLength ?? 0, body };
      } catch (err) {
        if ((err as { name?: string }).name === 'NoSuchKey') return undefined;
        throw err;
      }
    },

    async put(key, body, signal) {
      const { sdk, s3 } = await open();
      await s3.send(
        new sdk.PutObjectCommand({ Bucket, Key: key, Body: body, ContentLength: body.length }),
        opts(signal),
      );
    },

    async putMultipart(key, size, partBytes, readPart, concurrency, signal) {
      const { sdk, s3 } = await open();
      const created = await s3.send(
        new sdk.CreateMultipartUploadCommand({ Bucket, Key: key }),
        opts(signal),
      );
      const UploadId = created.UploadId;
      if (!UploadId) throw new Error(`the service gave no upload id for ${key}`);
      const count = Math.max(1, Math.ceil(size / partBytes));
      const parts: { ETag: string; PartNumber: number }[] = [];
      try {
        const numbers = Array.from({ length: count }, (_, i) => i + 1);
        await inParallel(numbers, concurrency, async (PartNumber) => {
          const offset = (PartNumber - 1) * partBytes;
          const body = await readPart(offset, Math.min(partBytes, size - offset));
          const r = await s3.send(
            new sdk.UploadPartCommand({
              Bucket,
              Key: key,
              UploadId,
              PartNumber,
              Body: body,
              ContentLength: body.length,
            }),
            opts(signal),
          );
          parts.push({ ETag: r.ETag ?? '', PartNumber });
        });
        parts.sort((a, b) => a.PartNumber - b.PartNumber);
        await s3.send(
          new sdk.CompleteMultipartUploadCommand({
            Bucket,
            Key: key,
            UploadId,
            MultipartUpload: { Parts: parts },
          }),
          opts(signal),
        );
      } catch (err) {
        // Parts of an abandoned upload cost storage until aborted (or a lifecycle rule does it).
        await s3
          .send(new sdk.AbortMultipartUploadCommand({ Bucket, Key: key, UploadId }), {
            abortSignal: AbortSignal.timeout(10_000),
          })
          .catch(() => undefined);
        throw err;
      }
    },

    async refresh(key, signal) {
      const { sdk, s3 } = await open();
      await s3.send(
        new sdk.CopyObjectCommand({
          Bucket,
          Key: key,
          CopySource: `${Bucket}/${key.split('/').map(encodeURIComponent).join('/')}`,
          MetadataDirective: 'REPLACE',
          Metadata: { refreshed: String(Date.now()) },
        }),
        opts(signal),
      );
    },

    async list(prefix, signal) {
      const { sdk, s3 } = await open();
      const out: BucketObject[] = [];
      let ContinuationToken: string | undefined;
      do {
        const r = await s3.send(
          new sdk.ListObjectsV2Command({ Bucket, Prefix: prefix, ContinuationToken }),
          opts(signal),
        );
        for (const o of r.Contents ?? []) {
          if (o.Key === undefined) continue;
          out.push({
            key: o.Key,
            size: o.Size ?? 0,
            lastModified: o.LastModified?.getTime() ?? 0,
          });
        }
        ContinuationToken = r.IsTruncated ? r.NextContinuationToken : undefined;
      } while (ContinuationToken);
      return out;
    },

    async remove(key, signal) {
      const { sdk, s3 } = await open();
      await s3.send(new sdk.DeleteObjectCommand({ Bucket, Key: key }), opts(signal));
    },
  };
}
