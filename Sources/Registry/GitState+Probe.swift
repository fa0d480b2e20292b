import Foundation

extension GitState {
    /// The commit of the repository holding `file` and whether the file differs from it, or nil
    /// when git is absent, the file is outside a repository, or git fails for any reason.
    public static func probe(file: String) -> GitState? {
        let url = URL(fileURLWithPath: file)
        let directory = url.deletingLastPathComponent().path
        guard let head = runGit(["-C", directory, "rev-parse", "--verify", "HEAD"]), head.status == 0 else { return nil }
        let commit = head.output.trimmingCharacters(in: .whitespacesAndNewlines)
        guard commit.count >= 40, commit.allSatisfy(\.isHexDigit) else { return nil }
        // Porcelain status of just this file: empty when it is committed and unchanged; `??`
        // when untracked (which also makes the commit say nothing about it).
        guard let status = runGit(["-C", directory, "status", "--porcelain", "--", url.lastPathComponent]),
              status.status == 0 else { return nil }
        let dirty = !status.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
        return GitState(commit: commit, dirty: dirty)
    }

    /// Runs git through `/usr/bin/env` (so PATH decides); nil when it cannot start.
    private static func runGit(_ arguments: [String]) -> (status: Int32, output: String)? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["git"] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["GIT_OPTIONAL_LOCKS"] = "0"   // `status` must not take the index lock
        environment["LC_ALL"] = "C"
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            return nil
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
