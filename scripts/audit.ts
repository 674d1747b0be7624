// `npm run audit`: checks the service databases for orders left half done. Exits 1 on any violation.
// Reads the databases named by *_DATABASE_URL, or the embedded cluster `npm start` runs (start it first).
import { loadConfig, SERVICES, type DatabaseUrls } from '../src/config';
import { auditDatabases, formatReport } from '../src/audit/auditor';

async function main() {
  const port = Number(process.env.EMBEDDED_POSTGRES_PORT ?? 54329);
  const urls: DatabaseUrls =
    loadConfig().databaseUrls ??
    (Object.fromEntries(SERVICES.map((s) => [s, `postgresql://postgres:postgres@127.0.0.1:${port}/${s}`])) as DatabaseUrls);
  const report = await auditDatabases(urls);
  console.log(formatReport(report));
  process.exitCode = report.violations === 0 ? 0 : 1;
}

main().catch((error) => {
  console.error(`audit: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 2;
});
