import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Decodes a video file frame by frame into `RGBImage`s, through an `ffmpeg` subprocess writing
/// raw RGB24 frames to a pipe:
///
///     ffmpeg -v error -nostdin -noautorotate -i file:IN -map 0:v:0 [-vf scale=W:H]
///            -fps_mode passthrough -f rawvideo -pix_fmt rgb24 -
///
/// The first video stream is decoded (the one `VideoInfo.probe` describes). Every decoded frame
/// comes out once, in order: `-fps_mode passthrough` (`-vsync passthrough` on ffmpeg before 5.1)
/// stops ffmpeg from duplicating or dropping frames to make a constant rate. Rotation metadata is
/// not applied (frames are as coded, `info.width` x `info.height`), so every frame has the same
/// size. With `size`, frames are scaled (bicubic) to exactly that size, aspect ratio not kept.
///
///     let reader = try VideoReader(url: url)
///     while let frame = try reader.nextFrame() { ... }
///
/// Failures are `MediaError`s naming the file; an ffmpeg failure carries its last stderr lines.
/// `close()` (or releasing the reader) stops ffmpeg if it is still running and reaps it.
/// A reader is not thread-safe: use it from one thread (or task) at a time.
public final class VideoReader {
    /// The file being read.
    public let url: URL
    /// What ffprobe reported about the stream.
    public let info: VideoInfo
    /// Size of the frames `nextFrame()` returns: `info`'s, or the `size` asked for.
    public let width: Int
    public let height: Int
    /// Frames returned so far.
    public private(set) var framesRead = 0

    private let frameBytes: Int
    private var process: ChildProcess?
    private var state: State = .reading

    private enum State {
        case reading
        case finished
        case failed(MediaError)
        case closed
    }

    /// Probes `url` and starts decoding it. `size`, when given, scales every frame to
    /// `width` x `height` (both positive).
    public init(url: URL, size: (width: Int, height: Int)? = nil) throws {
        self.url = url
        let file = url.path
        try FFmpegTools.checkReadable(url)
        let ffmpeg = try FFmpegTools.require("ffmpeg") { MediaError.cannotRead(file: file, reason: $0) }
        info = try VideoInfo.probe(url: url)
        width = size?.width ?? info.width
        height = size?.height ?? info.height
        guard width > 0, height > 0 else {
            throw MediaError.invalidArgument("VideoReader size must be positive, got \(width)x\(height)")
        }
        frameBytes = try RGBImage.byteCount(width: width, height: height)

        var arguments = ["-v", "error", "-nostdin", "-noautorotate", "-i", FFmpegTools.fileArgument(url),
                         "-map", "0:v:0"]
        if let size {
            arguments += ["-vf", "scale=\(size.width):\(size.height)"]
        }
        arguments += FFmpegCapabilities.shared.supportsFpsMode(ffmpeg)
            ? ["-fps_mode", "passthrough"] : ["-vsync", "passthrough"]
        arguments += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
        process = try ChildProcess(executable: ffmpeg, arguments: arguments, stdin: .null, stdout: .pipe,
                                   failure: { MediaError.cannotRead(file: file, reason: $0) })
    }

    deinit { close() }

    /// The next frame, or nil once the stream has ended (and ffmpeg exited successfully; nil
    /// again on later calls). Throws if ffmpeg failed, or stopped in the middle of a frame; the
    /// same error again on later calls. After `close()`, nil.
    public func nextFrame() throws -> RGBImage? {
        switch state {
        case .reading: break
        case .finished, .closed: return nil
        case let .failed(error): throw error
        }
        guard let process else { return nil }
        var readError: Int32?
        var filled = 0
        let pixels = [UInt8](unsafeUninitializedCapacity: frameBytes) { buffer, initialized in
            (filled, readError) = process.readFully(into: UnsafeMutableRawBufferPointer(buffer))
            // Bytes past `filled` are never read: a short frame is an error below.
            initialized = frameBytes
        }
        if filled == frameBytes {
            framesRead += 1
            return RGBImage(unchecked: width, height, pixels)
        }
        // End of output (or a read error): ffmpeg has finished or failed.
        if readError != nil { process.terminate() }
        let status = process.wait()
        let error: MediaError?
        if !status.succeeded {
            error = failure("ffmpeg failed (\(status)) after \(framesRead) frames", process)
        } else if let readError {
            error = .cannotRead(file: url.path, reason: "reading ffmpeg's output: \(String(cString: strerror(readError)))")
        } else if filled > 0 {
            error = failure("ffmpeg's output ended inside frame \(framesRead + 1) (\(filled) of \(frameBytes) bytes)",
                            process)
        } else {
            error = nil
        }
        self.process = nil
        if let error {
            state = .failed(error)
            throw error
        }
        state = .finished
        return nil
    }

    /// Every remaining frame (mind the memory: width * height * 3 bytes each).
    public func readAllFrames() throws -> [RGBImage] {
        var frames: [RGBImage] = []
        if let count = info.frameCount, count > framesRead { frames.reserveCapacity(min(count - framesRead, 1 << 16)) }
        while let frame = try nextFrame() { frames.append(frame) }
        return frames
    }

    /// Stops decoding: ends ffmpeg if it still runs (SIGTERM, then SIGKILL after 2 s) and reaps
    /// it. Idempotent; `nextFrame()` then returns nil.
    public func close() {
        if let process { process.terminate() }
        process = nil
        if case .reading = state { state = .closed }
    }

    /// The child's pid while it runs (for tests).
    var processID: pid_t? { process?.pid }

    private func failure(_ what: String, _ process: ChildProcess) -> MediaError {
        let detail = FFmpegTools.lastLines(process.errorText(), dropping: FFmpegTools.fileArgument(url) + ": ")
        return .cannotRead(file: url.path, reason: detail.isEmpty ? what : "\(what): \(detail)")
    }
}
