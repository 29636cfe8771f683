// Writes app/src/widgets/icon.rs: the Lucide icons the app uses (every `Lucide::Name` in
// app/src), taken from npm lucide-static's SVGs, as one `Icon` component that draws them inline.
// The Rust build needs neither npm nor this script; run it after using a new icon:
//   node tools/icons.mjs            write app/src/widgets/icon.rs
//   node tools/icons.mjs --check    fail if that file is not what this would write
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const lucide = path.join(root, 'tools', 'node_modules', 'lucide-static');
const out = path.join(root, 'app', 'src', 'widgets', 'icon.rs');

// Every icon shares these root attributes: the component writes the view box, and
// style/main.css's \`.icon\` the rest (fill, stroke), so pages, which are sent uncompressed,
// do not repeat them for every icon.
const ROOT = {
  xmlns: 'http://www.w3.org/2000/svg',
  width: '24',
  height: '24',
  viewBox: '0 0 24 24',
  fill: 'none',
  stroke: 'currentColor',
  'stroke-width': '2',
  'stroke-linecap': 'round',
  'stroke-linejoin': 'round',
};

function rustFiles(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? rustFiles(p) : e.name.endsWith('.rs') ? [p] : [];
  });
}

// `ArrowUp` → `arrow-up`, `Trash2` → `trash-2` (Lucide's file names).
const kebab = (name) => name.replace(/([a-z])([A-Z0-9])/g, '$1-$2').replace(/([0-9])([A-Z])/g, '$1-$2').toLowerCase();

const used = new Set();
for (const file of rustFiles(path.join(root, 'app', 'src'))) {
  if (file === out) continue;
  for (const m of fs.readFileSync(file, 'utf8').matchAll(/\bLucide::([A-Z][A-Za-z0-9]*)/g)) used.add(m[1]);
}
const names = [...used].sort();

const version = JSON.parse(fs.readFileSync(path.join(lucide, 'package.json'), 'utf8')).version;
const bodies = names.map((name) => {
  const file = path.join(lucide, 'icons', `${kebab(name)}.svg`);
  if (!fs.existsSync(file)) throw new Error(`Lucide::${name}: lucide-static ${version} has no icons/${kebab(name)}.svg`);
  const svg = fs.readFileSync(file, 'utf8');
  const open = svg.match(/<svg\b([^>]*)>/);
  const attrs = Object.fromEntries([...open[1].matchAll(/([\w:-]+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
  for (const [k, v] of Object.entries(ROOT)) {
    if (attrs[k] !== v) throw new Error(`${kebab(name)}.svg: ${k}="${attrs[k]}", expected "${v}"`);
  }
  const inner = svg.slice(open.index + open[0].length, svg.lastIndexOf('</svg>'));
  return inner.split('\n').map((l) => l.trim()).filter(Boolean).join('').replace(/\s*\/>/g, '/>');
});

// ISC for Lucide; the icons Lucide took from Feather are also under Feather's MIT licence.
const licence = fs.readFileSync(path.join(lucide, 'LICENSE'), 'utf8');
const [isc, rest = ''] = licence.split(/\n---\n/);
const featherList = (rest.match(/derived from the Feather project:\s*\n\s*\n([^\n]+)/) || [])[1] || '';
const feather = new Set(featherList.split(',').map((s) => s.trim()));
const fromFeather = names.map(kebab).filter((n) => feather.has(n));
const mit = rest.slice(rest.indexOf('The MIT License'));
const comment = (text) => text.trim().split('\n').map((l) => `//! ${l}`.trimEnd()).join('\n');
// A paragraph as //! lines of at most 100 characters.
const wrap = (text) => text.split(' ').reduce((lines, word) => {
  const last = lines[lines.length - 1];
  if (last.length + word.length + 1 > 96) lines.push(word);
  else lines[lines.length - 1] = last ? `${last} ${word}` : word;
  return lines;
}, ['']).join('\n');

const rust = `//! Lucide icons (https://lucide.dev) drawn inline, so they show without JavaScript: the ones
//! the app uses, from lucide-static ${version}. Written by \`tools/icons.mjs\` (which finds every
//! \`Lucide::Name\` in app/src); do not edit, run \`node tools/icons.mjs\` after using a new icon.
//!
//! An icon is decoration (\`aria-hidden\`): the button or link around it carries the name, in
//! its text or its \`aria-label\`.
//!
${comment(isc)}
${fromFeather.length ? `//!\n${comment(wrap(`${fromFeather.join(', ')}: from Feather (https://feathericons.com), also under its licence:`))}\n//!\n${comment(mit)}\n` : ''}
use leptos::prelude::*;

/// The Lucide icons in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lucide {
${names.map((n) => `    ${n},`).join('\n')}
}

impl Lucide {
    /// The icon's SVG elements, inside a 24 × 24 view box.
    pub const fn body(self) -> &'static str {
        match self {
${names.map((n, i) => `            Lucide::${n} => r#"${bodies[i]}"#,`).join('\n')}
        }
    }

    /// The SVG's classes: \`icon\` and Lucide's name (\`icon lucide-arrow-up\`).
    pub const fn class(self) -> &'static str {
        match self {
${names.map((n) => `            Lucide::${n} => "icon lucide-${kebab(n)}",`).join('\n')}
        }
    }
}

/// An icon, drawn by the stylesheet's \`.icon\` (Lucide's stroke in the text colour, sized to
/// the text).
#[component]
pub fn Icon(icon: Lucide) -> impl IntoView {
    view! {
        <svg
            class=icon.class()
            width="20"
            height="20"
            viewBox="${ROOT.viewBox}"
            aria-hidden="true"
            inner_html=icon.body()
        ></svg>
    }
}
`;

// rustfmt with the project's settings, so the file is what \`cargo fmt --check\` expects.
const formatted = execFileSync('rustfmt', ['--edition', '2024', '--config-path', path.join(root, 'rustfmt.toml'), '--emit', 'stdout', '-q'], {
  input: rust,
  encoding: 'utf8',
});

if (process.argv.includes('--check')) {
  const current = fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : '';
  if (current !== formatted) {
    console.error(`${path.relative(root, out)} is out of date (icons used: ${names.join(', ')}): run node tools/icons.mjs`);
    process.exit(1);
  }
} else {
  fs.writeFileSync(out, formatted);
  console.log(`${path.relative(root, out)}: ${names.length} icons from lucide-static ${version} (${names.map(kebab).join(', ')})`);
}
