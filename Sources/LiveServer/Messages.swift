import Foundation
import StreamDiffusion

/// What a client controls, sent as `{"type": "settings", …}` with any subset of the fields.
/// Names follow the official wrapper (`t_index_list` → `tIndexList`), as in `StreamParameters`.
public struct LiveSettings: Codable, Sendable, Equatable {
    public enum Mode: String, Codable, Sendable {
        /// Frames in (the webcam), restyled frames out.
        case img2img
        /// No input: the server streams generations of the prompt to the client.
        case txt2img
    }

    public var mode: Mode = .img2img
    public var prompt = "a watercolor painting, soft light"
    public var negativePrompt = ""
    public var guidanceScale: Float = 1.2
    public var delta: Float = 1
    /// Indices into the LCM schedule; smaller indices mean stronger changes (more noise added).
    public var tIndexList: [Int] = [32]
    public var seed: UInt64 = 2
    public var similarityFilter = false
    /// 0.99 rather than the official 0.98: a third fewer skipped frames would judder a slow pan at
    /// 0.98, while 0.99 still saves 4× on a still scene (docs/FINDINGS.md §3).
    public var similarityThreshold = 0.99

    public init() {}

    /// Whether a stream built for `other` serves these settings after a prompt swap (a mode change
    /// rebuilds: txt2img streams start at index 0 without guidance, see `LiveEngine.makeStream`).
    func sharesStream(with other: LiveSettings) -> Bool {
        var a = self, b = other
        (a.prompt, b.prompt) = ("", "")
        return a == b
    }
}

/// A client's JSON message. Every field but `type` is optional; absent fields keep their value.
struct ClientMessage: Decodable {
    var type: String
    var mode: LiveSettings.Mode?
    var prompt: String?
    var negativePrompt: String?
    var guidanceScale: Float?
    var delta: Float?
    var tIndexList: [Int]?
    var seed: UInt64?
    var similarityFilter: Bool?
    var similarityThreshold: Double?

    /// `settings` with this message's fields applied, after checking every value; nothing changes
    /// when one is out of range.
    func applied(to settings: LiveSettings, limits: LiveLimits, scheduleLength: Int) throws(LiveError) -> LiveSettings {
        var s = settings
        if let mode { s.mode = mode }
        if let prompt { s.prompt = prompt }
        if let negativePrompt { s.negativePrompt = negativePrompt }
        if let guidanceScale { s.guidanceScale = guidanceScale }
        if let delta { s.delta = delta }
        if let tIndexList { s.tIndexList = tIndexList }
        if let seed { s.seed = seed }
        if let similarityFilter { s.similarityFilter = similarityFilter }
        if let similarityThreshold { s.similarityThreshold = similarityThreshold }
        guard s.prompt.count <= limits.maxPromptCharacters, s.negativePrompt.count <= limits.maxPromptCharacters else {
            throw .badSettings("prompts are limited to \(limits.maxPromptCharacters) characters")
        }
        guard s.guidanceScale.isFinite, (0...20).contains(s.guidanceScale) else {
            throw .badSettings("guidanceScale must be in 0…20")
        }
        guard s.delta.isFinite, (0...10).contains(s.delta) else { throw .badSettings("delta must be in 0…10") }
        guard (1...limits.maxSteps).contains(s.tIndexList.count),
              s.tIndexList.allSatisfy({ (0..<scheduleLength).contains($0) }) else {
            throw .badSettings("tIndexList must hold 1…\(limits.maxSteps) indices in 0…\(scheduleLength - 1)")
        }
        guard s.similarityThreshold.isFinite, (0...1).contains(s.similarityThreshold) else {
            throw .badSettings("similarityThreshold must be in 0…1")
        }
        return s
    }
}

/// Sent once after the upgrade.
struct HelloMessage: Encodable {
    let type = "hello"
    let width: Int, height: Int
    let model: String
    let settings: LiveSettings
    let limits: LiveLimits
}

/// Sent right after each output frame (a binary JPEG message) it describes.
struct FrameMessage: Encodable {
    let type = "frame"
    /// The client's input frame this output comes from, counting binary messages from 1 (nil for
    /// txt2img and for the first steps − 1 outputs of a multi-step stream, which come from noise).
    let input: Int?
    /// Server time from the input's arrival to the output's encoding, in ms.
    let serverMs: Double
    /// This client's outputs per second over the last two seconds.
    let fps: Double
    let framesIn: Int, framesOut: Int
    /// Inputs the similarity filter answered with the previous output.
    let skipped: Int
    /// Inputs replaced by a newer one before the model took them, plus outputs replaced by a
    /// newer one before the socket took them (latest frame wins).
    let dropped: Int
}

struct ErrorMessage: Encodable {
    let type = "error"
    let code: String
    let message: String
}

/// Why a client's message was refused. The connection stays open.
public enum LiveError: Error, Equatable, CustomStringConvertible {
    case badJSON(String)
    case badSettings(String)
    case badImage(String)
    case rateLimited(Int)
    case model(String)

    var code: String {
        switch self {
        case .badJSON: "bad_json"
        case .badSettings: "bad_settings"
        case .badImage: "bad_image"
        case .rateLimited: "rate_limited"
        case .model: "model_error"
        }
    }

    public var description: String {
        switch self {
        case let .badJSON(m): "malformed JSON message: \(m)"
        case let .badSettings(m): "settings refused: \(m)"
        case let .badImage(m): "frame refused: \(m)"
        case let .rateLimited(n): "more than \(n) messages per second: message dropped"
        case let .model(m): "the model failed on this frame: \(m)"
        }
    }
}

extension JSONEncoder {
    static let live: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()
}
