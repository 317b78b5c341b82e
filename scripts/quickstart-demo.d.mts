export function setUpDemo(
  api: (method: string, path: string, body?: unknown) => Promise<unknown>,
  where: { zone: string; dataDir: string },
): Promise<{
  provider: { id: string };
  offering: { id: string; name: string };
  instance: { id: string; name: string };
}>;
