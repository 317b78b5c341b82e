import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/**
 * AES-256-GCM for provider credentials at rest. The stored form is
 * `<keyId>:<iv b64>:<tag b64>:<ciphertext b64>` so keys can be rotated later.
 */
export class SecretBox {
  constructor(
    private readonly keyId: string,
    private readonly key: Buffer,
  ) {
    if (key.length !== 32) throw new Error('secret key must be 32 bytes');
  }

  /**
   * The key comes from CAIRN_SECRET_KEY (64 hex chars; required to share one database between
   * replicas), or from `<dataDir>/secret.key`, created on first start.
   */
  static load(envKey: string | undefined, dataDir: string): SecretBox {
    if (envKey !== undefined) {
      if (!/^[0-9a-fA-F]{64}$/.test(envKey)) throw new Error('CAIRN_SECRET_KEY must be 64 hex characters');
      return new SecretBox('env', Buffer.from(envKey, 'hex'));
    }
    const file = path.join(dataDir, 'secret.key');
    fs.mkdirSync(dataDir, { recursive: true });
    try {
      fs.writeFileSync(file, randomBytes(32).toString('hex'), { flag: 'wx', mode: 0o600 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    return new SecretBox('file', Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'hex'));
  }

  /**
   * A key of its own for one `purpose` (signing list cursors, say), derived from this one: the
   * same on every replica that holds this key, and telling nothing about it.
   */
  derive(purpose: string): Buffer {
    return createHmac('sha256', this.key).update(`cairn key for ${purpose}`).digest();
  }

  seal(plain: unknown): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const data = Buffer.concat([cipher.update(JSON.stringify(plain), 'utf8'), cipher.final()]);
    return [this.keyId, iv.toString('base64'), cipher.getAuthTag().toString('base64'), data.toString('base64')].join(
      ':',
    );
  }

  open(sealed: string): unknown {
    const [keyId, iv, tag, data] = sealed.split(':');
    if (keyId !== this.keyId || iv === undefined || tag === undefined || data === undefined) {
      throw new Error(`credentials were sealed with key "${keyId}", which this process does not hold`);
    }
    const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64'));
    decipher.setAuthTag(Buffer.from(tag, 'base64'));
    const plain = Buffer.concat([decipher.update(Buffer.from(data, 'base64')), decipher.final()]);
    return JSON.parse(plain.toString('utf8'));
  }
}
