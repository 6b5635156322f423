import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Encodes `RGBImage` frames into a video file through an `ffmpeg` subprocess reading raw RGB24
/// frames from a pipe:
///
///     ffmpeg -v error -y -f rawvideo -pix_fmt rgb24 -s WxH -r NUM/DEN -i -
///            -c:v libx264 -pix_fmt yuv420p -crf 18 -colorspace smpte170m -color_range tv OUT
///
/// The codec follows the extension: `.mp4`, `.m4v`, `.mov`, `.mkv` get H.264 (libx264, CRF 18);
/// `.webm` gets VP9 (libvpx-vp9, CRF 24, constant quality), or VP8 (libvpx) when this ffmpeg has
/// no VP9 encoder. Colours are converted with ffmpeg's default BT.601 limited-range matrix, and
/// the stream is tagged so (`smpte170m`, `tv`) so players and `VideoReader` convert back with the
/// same matrix.
///
/// **Even sizes only.** yuv420p halves the chroma resolution, so `width` and `height` must be
/// even; an odd size is refused at `init` with `MediaError.invalidArgument` (crop or pad the
/// frames yourself: nothing is cropped or padded silently).
///
/// ffmpeg writes to a temporary file next to `url` (`.NAME.partial-UUID.EXT`), renamed to `url`
/// by a successful `finish()`: a failed, cancelled or abandoned writer never leaves a truncated
/// file at `url` (an existing file there is replaced only on success). Call `finish()`; a
/// writer released without it is cancelled. Not thread-safe: use it from one thread at a time.
public final class VideoWriter {
    /// The file written by `finish()`.
    public let url: URL
    public let width: Int
    public let height: Int
    public let frameRate: FrameRate
    /// The ffmpeg encoder used ("libx264", "libvpx-vp9" or "libvpx").
    public let encoder: String
    /// Frames accepted so far.
    public private(set) var framesWritten = 0

    private let temporaryURL: URL
    private let frameBytes: Int
    private var process: ChildProcess?
    private var state: State = .open

    private enum State {
        case open
        case finished
        case failed(MediaError)
        case cancelled
    }

    /// Starts ffmpeg for a `width` x `height` video at `frameRate` (e.g. `30`, or
    /// `FrameRate(numerator: 30000, denominator: 1001)`).
    public init(url: URL, width: Int, height: Int, frameRate: FrameRate) throws {
        self.url = url
        self.width = width
        self.height = height
        self.frameRate = frameRate
        let file = url.path
        guard url.isFileURL else { throw MediaError.cannotWrite(file: url.absoluteString, reason: "not a file URL") }
        frameBytes = try RGBImage.byteCount(width: width, height: height)
        guard width % 2 == 0, height % 2 == 0 else {
            throw MediaError.invalidArgument(
                "\(file): video size must be even for yuv420p, got \(width)x\(height) (crop or pad the frames)")
        }
        guard frameRate.isValid else {
            throw MediaError.invalidArgument("\(file): frame rate must be positive, got \(frameRate)")
        }
        let ffmpeg = try FFmpegTools.require("ffmpeg") { MediaError.cannotWrite(file: file, reason: $0) }
        let codecArguments: [String]
        (encoder, codecArguments) = try Self.codec(for: url, ffmpeg: ffmpeg)

        let folder = url.deletingLastPathComponent()
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isFolder), isFolder.boolValue else {
            throw MediaError.cannotWrite(file: file, reason: "folder \(folder.path) does not exist")
        }
        temporaryURL = folder.appendingPathComponent(
            ".\(url.deletingPathExtension().lastPathComponent).partial-\(UUID().uuidString).\(url.pathExtension)")

        let arguments = ["-v", "error", "-y",
                         "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "\(width)x\(height)", "-r", "\(frameRate)",
                         "-i", "-"]
            + codecArguments
            + ["-colorspace", "smpte170m", "-color_range", "tv", FFmpegTools.fileArgument(temporaryURL)]
        process = try ChildProcess(executable: ffmpeg, arguments: arguments, stdin: .pipe, stdout: .null,
                                   failure: { MediaError.cannotWrite(file: file, reason: $0) })
    }

    /// As `init(url:width:height:frameRate:)` with the rate as (numerator, denominator), e.g. `(30000, 1001)`.
    public convenience init(url: URL, width: Int, height: Int, frameRate: (numerator: Int, denominator: Int)) throws {
        try self.init(url: url, width: width, height: height,
                      frameRate: FrameRate(numerator: frameRate.numerator, denominator: frameRate.denominator))
    }

    deinit {
        if process != nil { cancel() }
    }

    /// Sends one frame to the encoder (blocks while ffmpeg catches up). A frame of another size
    /// is refused with `.invalidArgument` and the writer stays usable; an ffmpeg failure throws
    /// `.cannotWrite` with its last stderr lines, and every later call throws it again.
    public func write(_ frame: RGBImage) throws {
        try checkOpen()
        guard frame.width == width, frame.height == height else {
            throw MediaError.invalidArgument(
                "\(url.path): frame is \(frame.width)x\(frame.height), the video is \(width)x\(height)")
        }
        guard let process else { return }
        let error = frame.pixels.withUnsafeBytes { process.writeAll($0) }
        if let error {
            // EPIPE: ffmpeg stopped reading, so it has failed; say why.
            let status = error == EPIPE ? process.wait() : process.terminate()
            let what = error == EPIPE ? "ffmpeg stopped reading frames (\(status))"
                                      : "writing to ffmpeg: \(String(cString: strerror(error)))"
            throw fail(what)
        }
        framesWritten += 1
    }

    /// Closes ffmpeg's input, waits for it to finish encoding, checks that it succeeded and moves
    /// the file into place. Throws `.cannotWrite` (with ffmpeg's last stderr lines) on failure,
    /// or when no frame was written. Idempotent once it succeeded.
    public func finish() throws {
        if case .finished = state { return }
        try checkOpen()
        guard let process else { return }
        guard framesWritten > 0 else {
            process.terminate()
            throw fail("no frames were written")
        }
        process.closeInput()
        let status = process.wait()
        guard status.succeeded else { throw fail("ffmpeg failed (\(status)) after \(framesWritten) frames") }
        // rename(2): atomic, and replaces an existing file at `url`.
        guard rename(temporaryURL.path, url.path) == 0 else {
            throw fail("cannot move \(temporaryURL.lastPathComponent) into place: \(String(cString: strerror(errno)))")
        }
        self.process = nil
        state = .finished
    }

    /// Abandons the video: stops ffmpeg (reaping it) and deletes the partial file. Idempotent;
    /// later `write`/`finish` calls throw.
    public func cancel() {
        guard let process else { return }
        process.terminate()
        self.process = nil
        try? FileManager.default.removeItem(at: temporaryURL)
        if case .open = state { state = .cancelled }
    }

    /// The child's pid while it runs (for tests).
    var processID: pid_t? { process?.pid }

    private func checkOpen() throws {
        switch state {
        case .open: return
        case let .failed(error): throw error
        case .finished: throw MediaError.invalidArgument("\(url.path): the video is already finished")
        case .cancelled: throw MediaError.invalidArgument("\(url.path): the writer was cancelled")
        }
    }

    /// Records and returns the failure (ffmpeg's stderr tail appended), stopping ffmpeg.
    private func fail(_ what: String) -> MediaError {
        var reason = what
        if let process {
            let detail = FFmpegTools.lastLines(process.errorText(),
                                               dropping: FFmpegTools.fileArgument(temporaryURL) + ": ")
            if !detail.isEmpty { reason += ": " + detail }
        }
        let error = MediaError.cannotWrite(file: url.path, reason: reason)
        cancel()
        state = .failed(error)
        return error
    }

    /// The encoder and its options for the extension.
    private static func codec(for url: URL, ffmpeg: String) throws -> (String, [String]) {
        switch url.pathExtension.lowercased() {
        case "mp4", "m4v", "mov", "mkv":
            return ("libx264", ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18"])
        case "webm":
            let encoders = FFmpegCapabilities.shared.encoders(ffmpeg)
            if encoders.contains("libvpx-vp9") || encoders.isEmpty {
                // CRF with -b:v 0 is libvpx-vp9's constant-quality mode.
                return ("libvpx-vp9", ["-c:v", "libvpx-vp9", "-pix_fmt", "yuv420p", "-crf", "24", "-b:v", "0",
                                       "-deadline", "good", "-cpu-used", "4", "-row-mt", "1"])
            }
            if encoders.contains("libvpx") {
                return ("libvpx", ["-c:v", "libvpx", "-pix_fmt", "yuv420p", "-crf", "10", "-b:v", "8M"])
            }
            throw MediaError.unsupported(file: url.path, reason: "this ffmpeg has no VP9 or VP8 encoder for .webm")
        default:
            throw MediaError.unsupported(
                file: url.path, reason: "unknown video extension '\(url.pathExtension)' (use .mp4, .m4v, .mov, .mkv or .webm)")
        }
    }
}
