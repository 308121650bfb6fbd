import Router from '@koa/router';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const UI_DIR = join(__dirname, 'ui');
const FILES = {
  '/portal': { file: 'portal.html', type: 'text/html; charset=utf-8' },
  '/portal/app.js': { file: 'portal.js', type: 'text/javascript; charset=utf-8' },
  '/portal/app.css': { file: 'portal.css', type: 'text/css; charset=utf-8' },
  // ES modules of the page (imported by app.js), served as they are: no build step.
  ...Object.fromEntries(['core', 'endpoints', 'log', 'catalog', 'stats', 'snippets'].map((m) => [`/portal/${m}.js`, { file: `${m}.js`, type: 'text/javascript; charset=utf-8' }])),
} as Record<string, { file: string; type: string }>;

// Same-origin scripts and styles only: data rendered by the page can never execute.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'";

/** The customer's webhook settings page: static files, no build step; it talks to the REST API. */
export function portalRouter(): Router {
  const router = new Router();
  const cache = new Map<string, Buffer>();
  for (const [path, { file, type }] of Object.entries(FILES)) {
    router.get(path, (ctx) => {
      let body = cache.get(file);
      if (!body) {
        body = readFileSync(join(UI_DIR, file));
        if (process.env.NODE_ENV === 'production') cache.set(file, body);
      }
      ctx.type = type;
      ctx.set('Content-Security-Policy', CSP);
      ctx.set('Referrer-Policy', 'no-referrer');
      ctx.body = body;
    });
  }
  return router;
}
