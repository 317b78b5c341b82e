/**
 * Shell completion scripts for bash, zsh and fish, generated from the command tree: each command
 * path's subcommands and flags, which flags take a value, and the values a flag takes (its
 * choices, or a file). The script walks the words typed so far to the command path, skipping
 * flags and their values, and offers what fits at the cursor. No call back into `cairn`.
 */
import type { Command, Option } from '@commander-js/extra-typings';

/** A command path (`provider create`; '' for `cairn` itself) and what may follow it. */
export interface CompletionNode {
  path: string;
  subcommands: string[];
  flags: string[];
  /** The flags that take a value (the next word is theirs). */
  takes: string[];
  /** A flag's values: its choices, or `FILES` for a path. */
  values: Record<string, string[]>;
}

/** The value of `values` for a flag that takes a file path. */
export const FILES = '__files__';

type AnyCommand = Command<unknown[], Record<string, unknown>, Record<string, unknown>>;

function flagsOf(options: readonly Option[]) {
  const flags: string[] = [];
  const takes: string[] = [];
  const values: Record<string, string[]> = {};
  for (const o of options) {
    const names = [o.short, o.long].filter((n): n is string => n !== undefined);
    flags.push(...names);
    if (!o.required && !o.optional) continue;
    takes.push(...names);
    const v = o.argChoices ? [...o.argChoices] : o.long === '--file' ? [FILES] : undefined;
    if (v) for (const n of names) values[n] = v;
  }
  return { flags, takes, values };
}

/** Every command path of the tree, the root's (global) flags counted at each. */
export function completionTree(program: AnyCommand): CompletionNode[] {
  const global = flagsOf(program.options);
  const nodes: CompletionNode[] = [];
  const walk = (cmd: AnyCommand, path: string) => {
    const own = path === '' ? { flags: [], takes: [], values: {} } : flagsOf(cmd.options);
    nodes.push({
      path,
      subcommands: cmd.commands.map((c) => c.name()),
      flags: [...own.flags, ...global.flags, '--help'],
      takes: [...own.takes, ...global.takes],
      values: { ...global.values, ...own.values },
    });
    for (const sub of cmd.commands) walk(sub as AnyCommand, path === '' ? sub.name() : `${path} ${sub.name()}`);
  };
  walk(program, '');
  return nodes;
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The shared part of the bash and zsh scripts (POSIX shell functions). */
function posixFunctions(nodes: CompletionNode[]): string {
  const nodeCases = nodes
    .map(
      (n) =>
        `    ${q(n.path)}) _cairn_subs=${q(n.subcommands.join(' '))}; _cairn_flags=${q(n.flags.join(' '))}; _cairn_takes=${q(n.takes.join(' '))} ;;`,
    )
    .join('\n');
  const valueCases = nodes
    .flatMap((n) =>
      Object.entries(n.values).map(([flag, v]) => `    ${q(`${n.path} ${flag}`)}) echo ${q(v.join(' '))} ;;`),
    )
    .join('\n');
  return `_cairn_node() {
  _cairn_subs=''; _cairn_flags=''; _cairn_takes=''
  case "$1" in
${nodeCases}
  esac
}

_cairn_values() {
  case "$1" in
${valueCases}
  esac
}

# $1: the word at the cursor; the rest: the words before it, after "cairn".
# Prints the candidates, or ${FILES} where a file path goes.
_cairn_candidates() {
  local cur="$1" at='' skip='' w
  shift
  for w in "$@"; do
    if [ -n "$skip" ]; then skip=''; continue; fi
    _cairn_node "$at"
    case "$w" in
      -*) case " $_cairn_takes " in *" $w "*) skip="$w" ;; esac ;;
      *) case " $_cairn_subs " in *" $w "*) at="\${at:+$at }$w" ;; esac ;;
    esac
  done
  _cairn_node "$at"
  if [ -n "$skip" ]; then _cairn_values "$at $skip"; return; fi
  case "$cur" in
    -*) echo "$_cairn_flags" ;;
    *) echo "$_cairn_subs" ;;
  esac
}
`;
}

export function bashScript(nodes: CompletionNode[]): string {
  return `# bash completion for cairn: source <(cairn completion bash)
${posixFunctions(nodes)}
_cairn() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" words
  words="$(_cairn_candidates "$cur" "\${COMP_WORDS[@]:1:COMP_CWORD-1}")"
  if [ "$words" = ${FILES} ]; then
    COMPREPLY=($(compgen -f -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
  fi
}
complete -F _cairn cairn
`;
}

export function zshScript(nodes: CompletionNode[]): string {
  return `#compdef cairn
# zsh completion for cairn: source <(cairn completion zsh) after compinit
${posixFunctions(nodes)}
_cairn() {
  local out
  out="$(_cairn_candidates "\${words[CURRENT]}" "\${(@)words[2,CURRENT-1]}")"
  if [[ "$out" == ${FILES} ]]; then
    _files
  else
    compadd -- \${=out}
  fi
}
if (( $+functions[compdef] )); then
  compdef _cairn cairn
else
  echo 'cairn completion: run compinit first (autoload -U compinit && compinit)' >&2
fi
`;
}

export function fishScript(nodes: CompletionNode[]): string {
  const fq = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  const list = (xs: string[]) => xs.map(fq).join(' ');
  const nodeCases = nodes
    .map(
      (n) =>
        `    case ${fq(n.path)}\n        set -g __cairn_subs ${list(n.subcommands)}\n        set -g __cairn_flags ${list(n.flags)}\n        set -g __cairn_takes ${list(n.takes)}`,
    )
    .join('\n');
  const valueCases = nodes
    .flatMap((n) =>
      Object.entries(n.values).map(
        ([flag, v]) => `    case ${fq(`${n.path} ${flag}`)}\n        printf '%s\\n' ${list(v)}`,
      ),
    )
    .join('\n');
  return `# fish completion for cairn: cairn completion fish | source
function __cairn_node
    set -g __cairn_subs
    set -g __cairn_flags
    set -g __cairn_takes
    switch $argv[1]
${nodeCases}
    end
end

function __cairn_values
    switch $argv[1]
${valueCases}
    end
end

function __cairn_complete
    set -l tokens (commandline -opc)
    set -l cur (commandline -ct)
    set -e tokens[1]
    set -l at ''
    set -l skip ''
    for w in $tokens
        if test -n "$skip"
            set skip ''
            continue
        end
        __cairn_node "$at"
        if string match -q -- '-*' $w
            if contains -- $w $__cairn_takes
                set skip $w
            end
        else if contains -- $w $__cairn_subs
            set at (string trim -- "$at $w")
        end
    end
    __cairn_node "$at"
    if test -n "$skip"
        set -l values (__cairn_values "$at $skip")
        if test "$values" = ${FILES}
            __fish_complete_path $cur
        else
            printf '%s\\n' $values
        end
        return
    end
    if string match -q -- '-*' $cur
        printf '%s\\n' $__cairn_flags
    else
        printf '%s\\n' $__cairn_subs
    end
end

complete -c cairn -f -a '(__cairn_complete)'
`;
}

export const SHELLS = { bash: bashScript, zsh: zshScript, fish: fishScript } as const;
