import {accessSync, constants} from 'node:fs'
import {delimiter, join} from 'node:path'
import {ExitCode, R1Error} from '../errors.js'

export const PACKAGE_MANAGERS = ['npm', 'pnpm', 'yarn'] as const
export type PackageManager = (typeof PACKAGE_MANAGERS)[number]

/** The package manager that launched r1 (`npx`, `pnpm dlx`, `yarn dlx`), else npm. */
export function detectPackageManager(env: NodeJS.ProcessEnv = process.env): PackageManager {
  const agent = env.npm_config_user_agent ?? ''
  if (agent.startsWith('pnpm/')) return 'pnpm'
  if (agent.startsWith('yarn/')) return 'yarn'
  return 'npm'
}

/** The package managers found on PATH (npm first); only these are offered. */
export function installedPackageManagers(env: NodeJS.ProcessEnv = process.env): PackageManager[] {
  const dirs = (env.PATH ?? '').split(delimiter).filter(Boolean)
  const exts = process.platform === 'win32' ? (env.PATHEXT ?? '.EXE;.CMD').split(';') : ['']
  const found = (name: string) =>
    dirs.some((dir) =>
      exts.some((ext) => {
        try {
          accessSync(join(dir, name + ext), constants.X_OK)
          return true
        } catch {
          return false
        }
      }),
    )
  return PACKAGE_MANAGERS.filter((pm) => found(pm))
}

/** Installs a project's dependencies; on failure says what failed and leaves the project as written. */
export async function installDependencies(dir: string, manager: PackageManager, signal?: AbortSignal): Promise<void> {
  const {execa} = await import('execa')
  const args = manager === 'npm' ? ['install', '--no-audit', '--no-fund'] : ['install']
  try {
    await execa(manager, args, {cwd: dir, stdin: 'ignore', ...(signal ? {cancelSignal: signal} : {})})
  } catch (error) {
    if (signal?.aborted) throw signal.reason
    const e = error as {code?: string; stderr?: string; shortMessage?: string}
    const missing = e.code === 'ENOENT'
    const tail = String(e.stderr ?? '').trim().split('\n').slice(-5).join('\n')
    throw new R1Error(
      missing ? `${manager} is not installed, so the dependencies of ${dir} were not installed.` : `\`${manager} install\` failed in ${dir}:\n${tail || e.shortMessage}`,
      ExitCode.FAILURE,
      {code: 'INSTALL_FAILED', hint: `The project is complete; install its dependencies yourself: cd ${dir} && ${manager} install (or choose another with --package-manager).`},
    )
  }
}

export type GitResult = 'initialized' | 'committed' | 'skipped-inside-repository'

/**
 * `git init` with a first commit. Inside an existing work tree nothing is done (a nested repository
 * is rarely wanted). Without a configured git identity the repository is left with staged files.
 */
export async function initGitRepository(dir: string): Promise<GitResult> {
  const {execa} = await import('execa')
  const inside = await execa('git', ['rev-parse', '--is-inside-work-tree'], {cwd: dir, reject: false, stdin: 'ignore'})
  if (inside.exitCode === 0 && inside.stdout.trim() === 'true') return 'skipped-inside-repository'
  try {
    await execa('git', ['init', '--quiet'], {cwd: dir, stdin: 'ignore'})
    await execa('git', ['add', '--all'], {cwd: dir, stdin: 'ignore'})
  } catch (error) {
    const e = error as {code?: string; stderr?: string}
    throw new R1Error(
      e.code === 'ENOENT' ? `git is not installed, so ${dir} is not a git repository.` : `git init failed in ${dir}: ${String(e.stderr ?? '').trim()}`,
      ExitCode.FAILURE,
      {code: 'GIT_FAILED', hint: 'The project is complete; run git init yourself, or pass --no-git.'},
    )
  }
  const commit = await execa('git', ['commit', '--quiet', '--no-verify', '-m', 'Initial commit from r1 init'], {cwd: dir, reject: false, stdin: 'ignore'})
  return commit.exitCode === 0 ? 'committed' : 'initialized'
}
