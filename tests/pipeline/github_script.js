// Runs the `script:` of an actions/github-script step the way the action
// does (an async function of require, github, context, core), against an
// in-memory GitHub: one repository, its pull requests and their comments.
// Used by tests/pipeline_files.rs.
//
// argv: SCRIPT_FILE STATE_FILE. The state (JSON) holds `repo`,
// `workflow_run`, `pulls` (number → {head_sha, state}) and `comments`
// (number → [{id, login, body}]). Prints the state after the run, plus
// `failed`, `warnings` and `calls` (the API calls that wrote).
'use strict';
const fs = require('fs');

const [scriptFile, stateFile] = process.argv.slice(2);
const script = fs.readFileSync(scriptFile, 'utf8');
const state = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
const out = { failed: null, warnings: [], calls: [] };
let nextId = 1000;

const notFound = () => Object.assign(new Error('Not Found'), { status: 404 });
const checkRepo = (p) => {
  if (p.owner !== state.repo.owner || p.repo !== state.repo.repo) throw notFound();
};
const github = {
  rest: {
    pulls: {
      async get(p) {
        checkRepo(p);
        const pr = state.pulls[String(p.pull_number)];
        if (!pr) throw notFound();
        return { data: { number: p.pull_number, head: { sha: pr.head_sha }, state: pr.state } };
      },
    },
    issues: {
      async listComments(p) {
        checkRepo(p);
        const all = state.comments[String(p.issue_number)] ?? [];
        const start = ((p.page ?? 1) - 1) * p.per_page;
        return { data: all.slice(start, start + p.per_page).map(view) };
      },
      async updateComment(p) {
        checkRepo(p);
        out.calls.push({ call: 'updateComment', id: p.comment_id });
        for (const list of Object.values(state.comments)) {
          const c = list.find((c) => c.id === p.comment_id);
          if (c) {
            if (c.login !== 'github-actions[bot]') throw Object.assign(new Error('Forbidden'), { status: 403 });
            c.body = p.body;
            return { data: view(c) };
          }
        }
        throw notFound();
      },
      async createComment(p) {
        checkRepo(p);
        out.calls.push({ call: 'createComment', issue: p.issue_number });
        const c = { id: nextId++, login: 'github-actions[bot]', body: p.body };
        (state.comments[String(p.issue_number)] ??= []).push(c);
        return { data: view(c) };
      },
    },
  },
  // Every page, as Octokit's paginate does.
  async paginate(fn, p) {
    const all = [];
    for (let page = 1; ; page++) {
      const { data } = await fn({ ...p, page });
      all.push(...data);
      if (data.length < p.per_page) return all;
    }
  },
};
const view = (c) => ({
  id: c.id,
  body: c.body,
  user: { login: c.login },
  html_url: `https://example.invalid/comment/${c.id}`,
});
const core = {
  setFailed(m) { out.failed = String(m); process.exitCode = 1; },
  warning(m) { out.warnings.push(String(m)); },
  info() {},
};
const context = { repo: state.repo, payload: { workflow_run: state.workflow_run } };

const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor;
new AsyncFunction('require', 'github', 'context', 'core', script)(require, github, context, core)
  .catch((e) => core.setFailed(e.message))
  .finally(() => {
    out.comments = state.comments;
    process.stdout.write(JSON.stringify(out));
  });
