import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// The plumbing under VideoInfo, VideoReader and VideoWriter: finding ffmpeg/ffprobe on PATH and
// running them with posix_spawn, raw frames going through pipes. Nothing here links FFmpeg.
//
// Every descriptor this file opens is close-on-exec (pipe2 with O_CLOEXEC where the C library has
// it), so a child spawned by another thread never inherits the write end of our pipes (which would
// keep ffmpeg from ever seeing end of input). ffmpeg's stderr goes to an unlinked temporary file,
// not a pipe: nothing has to drain it concurrently, and it cannot fill up and stall the child.

/// Public helpers about the external tools the video types use.
public enum VideoTools {
    /// True when both `ffmpeg` and `ffprobe` are on PATH (what `VideoReader`, `VideoWriter` and
    /// `VideoInfo.probe` need).
    public static var isAvailable: Bool {
        FFmpegTools.locate("ffmpeg") != nil && FFmpegTools.locate("ffprobe") != nil
    }

    /// The message given when `tool` (`ffmpeg` or `ffprobe`) is not on PATH.
    public static func notFoundMessage(_ tool: String) -> String {
        "\(tool) not found on PATH; install it with `apt-get install ffmpeg` (Debian/Ubuntu) or `brew install ffmpeg` (macOS)"
    }
}

enum FFmpegTools {
    /// The first regular, executable file named `tool` in the PATH's folders (an empty entry is the
    /// current folder, as for execvp); `/usr/bin:/bin` when PATH is unset. Never hard-coded.
    static func locate(_ tool: String, searchPath: String? = ProcessInfo.processInfo.environment["PATH"]) -> String? {
        let folders = (searchPath ?? "/usr/bin:/bin").split(separator: ":", omittingEmptySubsequences: false)
        for folder in folders {
            let candidate = (folder.isEmpty ? "." : String(folder)) + "/" + tool
            var isFolder: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isFolder), !isFolder.boolValue,
               FileManager.default.isExecutableFile(atPath: candidate) {
                return candidate
            }
        }
        return nil
    }

    /// `locate`, or the `MediaError` that `error` builds from `VideoTools.notFoundMessage(tool)`.
    static func require(_ tool: String, searchPath: String? = ProcessInfo.processInfo.environment["PATH"],
                        error: (String) -> MediaError) throws -> String {
        guard let path = locate(tool, searchPath: searchPath) else { throw error(VideoTools.notFoundMessage(tool)) }
        return path
    }

    /// ffmpeg's argument for a local path: the `file:` protocol, so that a name containing `:` or
    /// starting with `-` is never read as a protocol or an option.
    static func fileArgument(_ url: URL) -> String { "file:" + url.path }

    /// The checks ffmpeg would otherwise report less clearly: the file exists and is not a folder.
    static func checkReadable(_ url: URL) throws {
        guard url.isFileURL else { throw MediaError.cannotRead(file: url.absoluteString, reason: "not a file URL") }
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder) else {
            throw MediaError.cannotRead(file: url.path, reason: "no such file")
        }
        guard !isFolder.boolValue else { throw MediaError.cannotRead(file: url.path, reason: "is a folder, not a file") }
    }

    /// Lines of a tool's stderr worth quoting: the last `count` non-empty ones, joined with "; ".
    /// `prefix` (the input argument ffmpeg puts before its messages, e.g. "file:/x.mp4: ") is dropped.
    static func lastLines(_ text: String, count: Int = 5, dropping prefix: String? = nil) -> String {
        let lines = text.split(whereSeparator: { $0 == "\n" || $0 == "\r" })
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
            .map { line in
                if let prefix, line.hasPrefix(prefix) { String(line.dropFirst(prefix.count)) } else { line }
            }
        return lines.suffix(count).joined(separator: "; ")
    }
}

/// What ffmpeg builds in: cached per executable path, each asked at most once per process.
final class FFmpegCapabilities: @unchecked Sendable {
    static let shared = FFmpegCapabilities()

    private let lock = NSLock()
    private var fpsMode: [String: Bool] = [:]
    private var encoders: [String: Set<String>] = [:]

    /// Whether ffmpeg knows `-fps_mode` (5.1 and later); older ones only have `-vsync`, which newer
    /// ones deprecate and will drop.
    func supportsFpsMode(_ ffmpeg: String) -> Bool {
        if let known = lock.withLock({ fpsMode[ffmpeg] }) { return known }
        // If the query itself fails, assume a current ffmpeg.
        let result = (try? ChildProcess.capture(executable: ffmpeg, arguments: ["-hide_banner", "-h", "long"]))
            .map { $0.status.succeeded ? $0.output.contains("-fps_mode") : true } ?? true
        lock.withLock { fpsMode[ffmpeg] = result }
        return result
    }

    /// The encoder names `ffmpeg -encoders` lists (e.g. "libx264", "libvpx-vp9"); empty if unknown.
    func encoders(_ ffmpeg: String) -> Set<String> {
        if let known = lock.withLock({ encoders[ffmpeg] }) { return known }
        var names = Set<String>()
        if let result = try? ChildProcess.capture(executable: ffmpeg, arguments: ["-hide_banner", "-encoders"]),
           result.status.succeeded {
            // Lines look like " V....D libx264   libx264 H.264 / AVC ...", after a "------" rule.
            for line in result.output.split(separator: "\n") {
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                guard fields.count >= 2, fields[0].count == 6, let kind = fields[0].first, "VAS".contains(kind)
                else { continue }
                names.insert(String(fields[1]))
            }
        }
        lock.withLock { encoders[ffmpeg] = names }
        return names
    }
}

/// How a child process ended.
enum ExitStatus: Equatable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)
    /// waitpid could not tell (someone else reaped the child): nothing is known to have failed.
    case unknown

    init(waitStatus raw: Int32) {
        let low = raw & 0x7F
        if low == 0 {
            self = .exited((raw >> 8) & 0xFF)
        } else if low != 0x7F {
            self = .signaled(low)
        } else {
            self = .unknown
        }
    }

    /// Exit status 0, or unknown (not provably a failure).
    var succeeded: Bool {
        switch self {
        case let .exited(code): code == 0
        case .signaled: false
        case .unknown: true
        }
    }

    var description: String {
        switch self {
        case let .exited(code): "exit status \(code)"
        case let .signaled(signal): "killed by signal \(signal)"
        case .unknown: "unknown status"
        }
    }
}

/// One child process started with posix_spawn. Standard input and output are each either
/// /dev/null or a pipe to this process; standard error always goes to an unlinked temporary file
/// (`errorText`). The child is always reaped: by `wait()`, by `terminate()`, or at the latest by
/// deinit, which terminates it if it is still running.
final class ChildProcess {
    enum Stream { case null, pipe }

    let executable: String
    let pid: pid_t
    /// Our end of the child's stdin pipe (write), or -1.
    private(set) var inputFD: Int32 = -1
    /// Our end of the child's stdout pipe (read), or -1.
    private(set) var outputFD: Int32 = -1
    private var errorFD: Int32 = -1
    /// Set once the child has been reaped.
    private(set) var status: ExitStatus?

    /// Starts `executable` (a path: no PATH search here) with `arguments` (argv[0] is added). A
    /// failure to start is thrown as `failure(reason)`.
    init(executable: String, arguments: [String], stdin: Stream, stdout: Stream,
         failure: (String) -> MediaError) throws {
        self.executable = executable
        var toClose: [Int32] = []  // descriptors to close whatever happens
        defer { for fd in toClose { _ = close(fd) } }

        var childInput: Int32 = -1, childOutput: Int32 = -1
        var parentInput: Int32 = -1, parentOutput: Int32 = -1, errorFile: Int32 = -1
        do {
            if stdin == .pipe {
                let fds = try Self.makePipe()
                childInput = fds.read
                parentInput = fds.write
                toClose.append(childInput)
            }
            if stdout == .pipe {
                let fds = try Self.makePipe()
                parentOutput = fds.read
                childOutput = fds.write
                toClose.append(childOutput)
            }
            errorFile = try Self.makeErrorFile()
        } catch let reason as SystemFailure {
            for fd in [parentInput, parentOutput, errorFile] where fd >= 0 { _ = close(fd) }
            throw failure("cannot start \(executable): \(reason.message)")
        }

        #if canImport(Darwin)
        var actions: posix_spawn_file_actions_t? = nil
        var attributes: posix_spawnattr_t? = nil
        #else
        var actions = posix_spawn_file_actions_t()
        var attributes = posix_spawnattr_t()
        #endif
        posix_spawn_file_actions_init(&actions)
        posix_spawnattr_init(&attributes)
        defer {
            posix_spawn_file_actions_destroy(&actions)
            posix_spawnattr_destroy(&attributes)
        }
        if childInput >= 0 {
            posix_spawn_file_actions_adddup2(&actions, childInput, 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        if childOutput >= 0 {
            posix_spawn_file_actions_adddup2(&actions, childOutput, 1)
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        }
        posix_spawn_file_actions_adddup2(&actions, errorFile, 2)

        // The child starts with no blocked signals and SIGPIPE at its default (die), whatever this
        // process does with them: closing our end of its stdout then stops it.
        var emptySet = sigset_t(), pipeSet = sigset_t()
        sigemptyset(&emptySet)
        sigemptyset(&pipeSet)
        sigaddset(&pipeSet, SIGPIPE)
        posix_spawnattr_setsigmask(&attributes, &emptySet)
        posix_spawnattr_setsigdefault(&attributes, &pipeSet)
        var flags = Int32(POSIX_SPAWN_SETSIGMASK) | Int32(POSIX_SPAWN_SETSIGDEF)
        #if canImport(Darwin)
        flags |= Int32(POSIX_SPAWN_CLOEXEC_DEFAULT)
        #endif
        posix_spawnattr_setflags(&attributes, Int16(flags))

        // argv and the environment, as C strings owned here.
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] =
            ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var childPID: pid_t = 0
        let result = posix_spawn(&childPID, executable, &actions, &attributes, argv, envp)
        guard result == 0 else {
            for fd in [parentInput, parentOutput, errorFile] where fd >= 0 { _ = close(fd) }
            throw failure("cannot start \(executable): \(String(cString: strerror(result)))")
        }
        pid = childPID
        inputFD = parentInput
        outputFD = parentOutput
        errorFD = errorFile
    }

    deinit {
        closeInput()
        closeOutput()
        if status == nil { terminate() }
        if errorFD >= 0 { _ = close(errorFD) }
    }

    // MARK: Pipes

    /// Closes our end of the child's stdin: the child sees end of input.
    func closeInput() {
        if inputFD >= 0 { _ = close(inputFD) }
        inputFD = -1
    }

    /// Closes our end of the child's stdout: the child's next write fails (SIGPIPE).
    func closeOutput() {
        if outputFD >= 0 { _ = close(outputFD) }
        outputFD = -1
    }

    /// Reads from the child's stdout until `buffer` is full or end of file, however the data
    /// arrives (a pipe gives at most what it holds per read). Returns the byte count; a read error
    /// is returned as its errno.
    func readFully(into buffer: UnsafeMutableRawBufferPointer) -> (count: Int, errno: Int32?) {
        guard outputFD >= 0, let base = buffer.baseAddress else { return (0, outputFD >= 0 ? nil : EBADF) }
        var filled = 0
        while filled < buffer.count {
            let n = read(outputFD, base + filled, buffer.count - filled)
            if n > 0 {
                filled += n
            } else if n == 0 {
                break
            } else if errno != EINTR {
                return (filled, errno)
            }
        }
        return (filled, nil)
    }

    /// Writes all of `bytes` to the child's stdin; returns errno on failure (EPIPE when the child
    /// has exited or closed its input). Never raises SIGPIPE in this process: on Linux the signal
    /// is blocked in this thread for the write and a SIGPIPE it caused is consumed; on Darwin the
    /// pipe was made with F_SETNOSIGPIPE.
    func writeAll(_ bytes: UnsafeRawBufferPointer) -> Int32? {
        guard inputFD >= 0 else { return EBADF }
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return nil }
        #if !canImport(Darwin)
        var pipeSet = sigset_t(), oldMask = sigset_t(), pending = sigset_t()
        sigemptyset(&pipeSet)
        sigaddset(&pipeSet, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &pipeSet, &oldMask)
        sigemptyset(&pending)
        sigpending(&pending)
        let wasPending = sigismember(&pending, SIGPIPE) == 1
        var sawEPIPE = false
        defer {
            if sawEPIPE && !wasPending {
                var noWait = timespec(tv_sec: 0, tv_nsec: 0)
                while sigtimedwait(&pipeSet, nil, &noWait) == -1 && errno == EINTR {}
            }
            pthread_sigmask(SIG_SETMASK, &oldMask, nil)
        }
        #endif
        var written = 0
        while written < bytes.count {
            let n = write(inputFD, base + written, bytes.count - written)
            if n >= 0 {
                written += n
            } else if errno != EINTR {
                let error = errno
                #if !canImport(Darwin)
                sawEPIPE = error == EPIPE
                #endif
                return error
            }
        }
        return nil
    }

    /// Everything left on the child's stdout, up to `limit` bytes (more is an error).
    func readToEnd(limit: Int) -> (data: [UInt8], errno: Int32?) {
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let (count, error) = chunk.withUnsafeMutableBytes { readFully(into: $0) }
            data.append(contentsOf: chunk[0..<count])
            if let error { return (data, error) }
            if data.count > limit { return (data, EFBIG) }
            if count < chunk.count { return (data, nil) }
        }
    }

    // MARK: Ending

    /// Waits for the child to exit (blocking) and reaps it; idempotent.
    @discardableResult
    func wait() -> ExitStatus {
        if let status { return status }
        var raw: Int32 = 0
        var result: ExitStatus = .unknown
        while true {
            let r = waitpid(pid, &raw, 0)
            if r == pid {
                result = ExitStatus(waitStatus: raw)
                break
            }
            if r == -1 && errno == EINTR { continue }
            break  // ECHILD: already reaped elsewhere
        }
        status = result
        return result
    }

    /// Stops the child if it is still running: closes both pipes, sends SIGTERM, waits up to
    /// `grace` seconds, then SIGKILL; always reaps it (no zombie).
    @discardableResult
    func terminate(grace: Double = 2) -> ExitStatus {
        if let status { return status }
        closeInput()
        closeOutput()
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(grace)
        var raw: Int32 = 0
        while Date() < deadline {
            let r = waitpid(pid, &raw, WNOHANG)
            if r == pid {
                status = ExitStatus(waitStatus: raw)
                return status!
            }
            if r == -1 && errno != EINTR {
                status = .unknown
                return .unknown
            }
            usleep(5_000)
        }
        kill(pid, SIGKILL)
        return wait()
    }

    /// The end of what the child wrote to stderr (at most `maxBytes`), as text.
    func errorText(maxBytes: Int = 16384) -> String {
        guard errorFD >= 0 else { return "" }
        var info = stat()
        guard fstat(errorFD, &info) == 0 else { return "" }
        let size = Int(info.st_size)
        let start = max(0, size - maxBytes)
        var bytes = [UInt8](repeating: 0, count: size - start)
        let n = bytes.withUnsafeMutableBytes { pread(errorFD, $0.baseAddress, $0.count, off_t(start)) }
        return String(decoding: bytes.prefix(max(0, n)), as: UTF8.self)
    }

    // MARK: Running to completion

    /// Runs a short command to completion and returns its status, stdout (as text) and stderr.
    static func capture(executable: String, arguments: [String], outputLimit: Int = 4 << 20,
                        failure: (String) -> MediaError = { MediaError.invalidArgument($0) }) throws
        -> (status: ExitStatus, output: String, errors: String) {
        let child = try ChildProcess(executable: executable, arguments: arguments, stdin: .null, stdout: .pipe,
                                     failure: failure)
        let (data, error) = child.readToEnd(limit: outputLimit)
        if error != nil {
            child.terminate()
        }
        let status = child.wait()
        return (status, String(decoding: data, as: UTF8.self), child.errorText())
    }

    // MARK: Descriptors

    struct SystemFailure: Error {
        let message: String
        init(_ what: String, _ code: Int32 = errno) { message = "\(what): \(String(cString: strerror(code)))" }
    }

    #if os(Linux)
    private typealias Pipe2 = @convention(c) (UnsafeMutablePointer<Int32>?, Int32) -> Int32
    /// glibc's and musl's pipe2, which Swift's Glibc module does not import.
    private static let pipe2: Pipe2? = {
        guard let symbol = dlsym(nil, "pipe2") else { return nil }
        return unsafeBitCast(symbol, to: Pipe2.self)
    }()
    #endif

    /// A pipe whose both ends are close-on-exec.
    static func makePipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        #if os(Linux)
        if let pipe2 {
            guard pipe2(&fds, O_CLOEXEC) == 0 else { throw SystemFailure("pipe2") }
            return (fds[0], fds[1])
        }
        #endif
        guard pipe(&fds) == 0 else { throw SystemFailure("pipe") }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        #if canImport(Darwin)
        _ = fcntl(fds[1], F_SETNOSIGPIPE, 1)
        #endif
        return (fds[0], fds[1])
    }

    /// An unlinked, close-on-exec temporary file for a child's stderr.
    static func makeErrorFile() throws -> Int32 {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("media-ffmpeg-stderr-\(UUID().uuidString)").path
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SystemFailure("cannot create \(path)") }
        unlink(path)
        return fd
    }
}
