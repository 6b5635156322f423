import Foundation

/// Peak resident memory for `bench scaling`. On Linux the kernel's high-water mark (VmHWM) can be
/// reset to the current RSS by writing "5" to /proc/self/clear_refs, so one process can measure
/// each configuration in turn; otherwise each configuration runs in its own process and reports
/// its whole-process peak (getrusage).
enum PeakMemory {
    /// Resets VmHWM to the current RSS; false where that is not possible.
    static func reset() -> Bool {
        guard let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? handle.close() }
        do { try handle.write(contentsOf: Data("5".utf8)) } catch { return false }
        return true
    }

    /// (VmHWM, VmRSS) in bytes from /proc/self/status; nil off Linux.
    static func status() -> (peak: Int, current: Int)? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        func kib(_ key: String) -> Int? {
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(key + ":") }) else { return nil }
            return line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first.flatMap { Int($0) }.map { $0 * 1024 }
        }
        guard let peak = kib("VmHWM"), let current = kib("VmRSS") else { return nil }
        return (peak, current)
    }

    /// This whole process's peak resident memory in bytes (getrusage; KiB on Linux, bytes on macOS).
    static func processPeak() -> Int {
        var usage = rusage()
        #if os(Linux)
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Int(usage.ru_maxrss) * 1024
        #else
        getrusage(RUSAGE_SELF, &usage)
        return Int(usage.ru_maxrss)
        #endif
    }

    /// Hands freed heap memory back to the system, so the next configuration starts from the
    /// memory it really holds (glibc keeps freed chunks otherwise).
    static func trimHeap() {
        // glibc's malloc_trim is not in the Glibc module map; look it up (absent elsewhere: no-op).
        typealias Trim = @convention(c) (Int) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return }
        _ = unsafeBitCast(symbol, to: Trim.self)(0)
    }
}
