/**
 * GET /health as OPA answers it: 200 `{}` when the policy can be evaluated, else 500 `{"error"}`.
 * Without a bundle nothing can be evaluated, so `?bundles` (and OPA's older `?bundle`) adds no
 * condition here. `?plugins` also requires every configured data document (`data:`; OPA's
 * plugins) to have loaded once; `?exclude-plugin=<name>` leaves one out.
 */
import type { Request, Response } from "express";
import type { AppContext } from "./context.js";

export function handleHealth(ctx: AppContext, req: Request, res: Response): void {
  if (!ctx.evaluator.revision()) {
    res.status(500).json({ error: "unable to perform evaluation: no policy bundle is active" });
    return;
  }
  if (flag(req, "plugins")) {
    const excluded = new Set(values(req, "exclude-plugin"));
    const down = Object.entries(ctx.dataStatus?.() ?? {})
      .filter(([name, status]) => !excluded.has(name) && status.loadedAt === undefined)
      .map(([name]) => name);
    if (down.length > 0) {
      res.status(500).json({ error: `one or more plugins are not up: data document ${down.join(", ")}` });
      return;
    }
  }
  res.status(200).json({});
}

/** OPA's boolean query parameters: `?x` and `?x=true` (any case) are true. */
function flag(req: Request, name: string): boolean {
  const v = values(req, name);
  if (v.length === 1 && v[0] === "") return true;
  return v.some((x) => x.toLowerCase() === "true");
}

function values(req: Request, name: string): string[] {
  const v = (req.query as Record<string, unknown>)[name];
  if (typeof v === "string") return [v];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}
