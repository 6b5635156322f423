import Foundation

/// A frame rate as the rational ffmpeg uses (`30000/1001` for NTSC's 29.97), kept reduced.
/// An integer literal is a whole rate: `let rate: FrameRate = 25`.
public struct FrameRate: Sendable, Hashable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    public let numerator: Int
    public let denominator: Int

    /// Stored reduced when both parts are positive; any other pair is kept as given and is not
    /// `isValid` (`VideoWriter` refuses it).
    public init(numerator: Int, denominator: Int = 1) {
        if numerator > 0, denominator > 0 {
            var (a, b) = (numerator, denominator)
            while b != 0 { (a, b) = (b, a % b) }
            self.numerator = numerator / a
            self.denominator = denominator / a
        } else {
            self.numerator = numerator
            self.denominator = denominator
        }
    }

    public init(integerLiteral value: Int) {
        self.init(numerator: value, denominator: 1)
    }

    /// Frames per second as a Double (`29.97002997...` for 30000/1001); NaN when not valid.
    public var value: Double { isValid ? Double(numerator) / Double(denominator) : .nan }

    /// Both parts positive.
    public var isValid: Bool { numerator > 0 && denominator > 0 }

    /// "num/den", as ffmpeg writes and reads it.
    public var description: String { "\(numerator)/\(denominator)" }

    /// ffprobe's "num/den" (or a plain integer); nil for "0/0", "N/A", negative or malformed text.
    init?(ffprobe text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2,
              let numerator = Int(parts[0].trimmingCharacters(in: .whitespaces)),
              let denominator = parts.count == 2 ? Int(parts[1].trimmingCharacters(in: .whitespaces)) : 1,
              numerator > 0, denominator > 0 else { return nil }
        self.init(numerator: numerator, denominator: denominator)
    }
}

/// What ffprobe reports about a file's first video stream (`-select_streams v:0`).
public struct VideoInfo: Sendable, Equatable {
    /// Coded picture size, in pixels (before any rotation metadata: `VideoReader` does not rotate).
    public let width: Int
    public let height: Int
    /// The stream's average frame rate (`avg_frame_rate`) when ffprobe gives a valid one, else its
    /// base rate (`r_frame_rate`); nil when neither is valid (e.g. both "0/0").
    public let frameRate: FrameRate?
    /// The frame count the container declares (`nb_frames`); nil when it declares none (Matroska
    /// and WebM usually don't, nor do raw streams). Only reading the whole stream gives a sure count.
    public let frameCount: Int?
    /// ffmpeg's codec name ("h264", "vp9", "png", ...), when given.
    public let codec: String?

    public init(width: Int, height: Int, frameRate: FrameRate?, frameCount: Int?, codec: String?) {
        self.width = width
        self.height = height
        self.frameRate = frameRate
        self.frameCount = frameCount
        self.codec = codec
    }

    /// Runs `ffprobe -v error -select_streams v:0 -show_entries
    /// stream=width,height,r_frame_rate,avg_frame_rate,nb_frames,codec_name -of json` on the file.
    ///
    /// Throws a `MediaError` naming the file: `.cannotRead` when it is missing, a folder, or not
    /// something ffprobe can open (with ffprobe's last error lines), or when ffprobe is not on PATH;
    /// `.unsupported` when it opens but has no video stream (an audio file) or no usable size.
    /// Note that ffmpeg opens still images too (a PNG is a one-frame video) and reads `.txt`
    /// files as ANSI art.
    public static func probe(url: URL) throws -> VideoInfo {
        try FFmpegTools.checkReadable(url)
        let file = url.path
        let ffprobe = try FFmpegTools.require("ffprobe") { MediaError.cannotRead(file: file, reason: $0) }
        let input = FFmpegTools.fileArgument(url)
        let result = try ChildProcess.capture(
            executable: ffprobe,
            arguments: ["-v", "error", "-select_streams", "v:0",
                        "-show_entries", "stream=width,height,r_frame_rate,avg_frame_rate,nb_frames,codec_name",
                        "-of", "json", input],
            failure: { MediaError.cannotRead(file: file, reason: $0) })
        guard result.status.succeeded else {
            let detail = FFmpegTools.lastLines(result.errors, dropping: input + ": ")
            throw MediaError.cannotRead(
                file: file, reason: "not a video ffprobe can open (\(result.status)): \(detail.isEmpty ? "no message" : detail)")
        }
        return try parse(json: Data(result.output.utf8), file: file)
    }

    /// The first stream of ffprobe's JSON. Numbers may come as JSON numbers or strings;
    /// "N/A", "0/0", missing or negative values become nil (or an error for the size).
    static func parse(json: Data, file: String) throws -> VideoInfo {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: json)
        } catch {
            throw MediaError.cannotRead(file: file, reason: "ffprobe printed unreadable JSON: \(error.localizedDescription)")
        }
        guard let root = object as? [String: Any] else {
            throw MediaError.cannotRead(file: file, reason: "ffprobe printed unexpected JSON (not an object)")
        }
        guard let streams = root["streams"] as? [Any], let stream = streams.first as? [String: Any] else {
            throw MediaError.unsupported(file: file, reason: "no video stream")
        }
        guard let width = integer(stream["width"]), let height = integer(stream["height"]), width > 0, height > 0 else {
            let shown = "\(stream["width"].map { "\($0)" } ?? "none")x\(stream["height"].map { "\($0)" } ?? "none")"
            throw MediaError.unsupported(file: file, reason: "video stream has no usable size (\(shown))")
        }
        let rate = (stream["avg_frame_rate"] as? String).flatMap { FrameRate(ffprobe: $0) }
            ?? (stream["r_frame_rate"] as? String).flatMap { FrameRate(ffprobe: $0) }
        let count = integer(stream["nb_frames"]).flatMap { $0 > 0 ? $0 : nil }
        let codec = (stream["codec_name"] as? String).flatMap { $0.isEmpty ? nil : $0 }
        return VideoInfo(width: width, height: height, frameRate: rate, frameCount: count, codec: codec)
    }

    /// An integer from a JSON number or a decimal string; nil otherwise ("N/A", fractions, bools).
    private static func integer(_ value: Any?) -> Int? {
        switch value {
        case let string as String:
            return Int(string.trimmingCharacters(in: .whitespaces))
        case let number as NSNumber:
            // Whole numbers only (12.5 does not convert exactly, so gives nil).
            return Int(exactly: number.doubleValue)
        default:
            return nil
        }
    }
}
