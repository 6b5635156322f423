import Foundation

/// Where the driver's pipeline cache (compiled shaders) is kept between runs.
public enum PipelineCacheStorage: Sendable, Equatable {
    /// A file per device in `PipelineCacheFile.defaultDirectory`: `$STREAMDIFFUSION_CACHE_DIR`,
    /// else `$XDG_CACHE_HOME/streamdiffusion`, else `~/.cache/streamdiffusion`.
    case disk
    /// A file per device in this folder (tests, or a caller with its own cache location).
    case directory(URL)
    /// Nothing read or written: every run compiles its pipelines again.
    case memoryOnly
}

/// The pipeline-cache file of one device: its name, its location, and the checks its contents pass
/// before the driver sees them.
///
/// The file is an envelope around the driver's `vkGetPipelineCacheData` blob: the magic `SDVKPC01`,
/// the blob's byte count (UInt64) and its FNV-1a 64 hash (UInt64), little-endian, then the blob. A
/// blob is handed to `vkCreatePipelineCache` only when the envelope is intact (a truncated or
/// damaged file is caught by the length and hash: drivers are not required to survive a corrupt
/// body, and some have crashed on one) and its `VkPipelineCacheHeaderVersionOne` names this device
/// (header length 32, version 1, vendor ID, device ID, pipelineCacheUUID). Anything else is
/// ignored: the backend starts with an empty cache and overwrites the file.
public struct PipelineCacheFile: Sendable, Equatable {
    public let url: URL

    /// The environment variable that overrides the cache folder.
    public static let directoryKey = "STREAMDIFFUSION_CACHE_DIR"
    static let magic = Array("SDVKPC01".utf8)
    static let envelopeBytes = 24
    /// VkPipelineCacheHeaderVersionOne: 4 + 4 + 4 + 4 + 16 bytes.
    static let vulkanHeaderBytes = 32
    /// Larger files are not read (no driver's cache of this backend's ~20 pipelines comes near).
    static let maxBytes = 256 << 20

    /// `$STREAMDIFFUSION_CACHE_DIR`, else `$XDG_CACHE_HOME/streamdiffusion`, else
    /// `<home>/.cache/streamdiffusion` (empty variables count as unset, as XDG says).
    public static func defaultDirectory(environment: [String: String] = ProcessInfo.processInfo.environment,
                                        home: String = NSHomeDirectory()) -> URL {
        if let dir = environment[directoryKey], !dir.isEmpty { return URL(fileURLWithPath: dir, isDirectory: true) }
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty {
            return URL(fileURLWithPath: xdg, isDirectory: true).appendingPathComponent("streamdiffusion", isDirectory: true)
        }
        return URL(fileURLWithPath: home, isDirectory: true).appendingPathComponent(".cache/streamdiffusion", isDirectory: true)
    }

    /// `vulkan-pipelines-<vendor>-<device>-<driver version>-<pipelineCacheUUID>.bin`, in hex: a new
    /// driver or another GPU gets a file of its own instead of overwriting this one's.
    public static func fileName(for device: VulkanDeviceInfo) -> String {
        let uuid = device.pipelineCacheUUID.map { String(format: "%02x", $0) }.joined()
        return String(format: "vulkan-pipelines-%04x-%04x-%08x-", device.vendorID, device.deviceID, device.driverVersion) + uuid + ".bin"
    }

    /// The file for `device` under `storage`, or nil for `.memoryOnly`.
    public static func location(_ storage: PipelineCacheStorage, device: VulkanDeviceInfo) -> PipelineCacheFile? {
        switch storage {
        case .memoryOnly: return nil
        case .disk: return PipelineCacheFile(url: defaultDirectory().appendingPathComponent(fileName(for: device)))
        case let .directory(folder): return PipelineCacheFile(url: folder.appendingPathComponent(fileName(for: device)))
        }
    }

    /// What reading the file gave.
    public enum Loaded: Sendable, Equatable {
        /// A valid blob for this device (handed to the driver).
        case blob(Data)
        /// No file yet.
        case missing
        /// A file that is not a usable cache for this device, and why (it will be overwritten).
        case rejected(String)
    }

    /// Reads and checks the file; never throws (an unreadable file is `.rejected`).
    public func load(for device: VulkanDeviceInfo) -> Loaded {
        guard FileManager.default.fileExists(atPath: url.path) else { return .missing }
        let data: Data
        do {
            let size = (try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.intValue ?? 0
            guard size <= Self.maxBytes else { return .rejected("\(size) bytes, more than the \(Self.maxBytes) a cache may have") }
            data = try Data(contentsOf: url)
        } catch {
            return .rejected("unreadable: \(error.localizedDescription)")
        }
        switch Self.unwrap(data, for: device) {
        case let .success(blob): return .blob(blob)
        case let .failure(problem): return .rejected(problem.reason)
        }
    }

    struct Problem: Error, Equatable { let reason: String }

    /// The driver blob inside an envelope, if the envelope is intact and the blob's Vulkan header
    /// names `device`.
    static func unwrap(_ data: Data, for device: VulkanDeviceInfo) -> Result<Data, Problem> {
        let bytes = [UInt8](data)
        guard bytes.count >= envelopeBytes, Array(bytes[0..<8]) == magic else {
            return .failure(Problem(reason: "not a streamdiffusion pipeline cache (no SDVKPC01 envelope)"))
        }
        let length = littleEndian(bytes, at: 8, as: UInt64.self), hash = littleEndian(bytes, at: 16, as: UInt64.self)
        guard length == UInt64(bytes.count - envelopeBytes) else {
            return .failure(Problem(reason: "truncated or padded: \(bytes.count - envelopeBytes) bytes after the envelope, \(length) announced"))
        }
        let blob = Array(bytes[envelopeBytes...])
        guard fnv1a(blob) == hash else { return .failure(Problem(reason: "damaged: the contents do not match their hash")) }
        if let problem = headerProblem(blob, for: device) { return .failure(Problem(reason: problem)) }
        return .success(Data(blob))
    }

    /// Why a driver blob's VkPipelineCacheHeaderVersionOne does not fit `device`, or nil when it does.
    static func headerProblem(_ blob: [UInt8], for device: VulkanDeviceInfo) -> String? {
        guard blob.count >= vulkanHeaderBytes else { return "a \(blob.count)-byte cache is shorter than the Vulkan header" }
        let headerLength = littleEndian(blob, at: 0, as: UInt32.self), version = littleEndian(blob, at: 4, as: UInt32.self)
        let vendor = littleEndian(blob, at: 8, as: UInt32.self), deviceID = littleEndian(blob, at: 12, as: UInt32.self)
        let uuid = Array(blob[16..<32])
        // VUID-VkPipelineCacheHeaderVersionOne-headerSize-04967: headerSize must be 32.
        guard headerLength == UInt32(vulkanHeaderBytes) else { return "header length \(headerLength), not 32" }
        guard version == 1 else { return "header version \(version), not VK_PIPELINE_CACHE_HEADER_VERSION_ONE" }
        guard vendor == device.vendorID, deviceID == device.deviceID else {
            return String(format: "made for device %04x:%04x, not %04x:%04x", vendor, deviceID, device.vendorID, device.deviceID)
        }
        guard uuid == device.pipelineCacheUUID else { return "made by another driver build (pipelineCacheUUID differs)" }
        return nil
    }

    /// The envelope around a driver blob, as written to disk.
    static func wrap(_ blob: [UInt8]) -> Data {
        var out = magic
        withUnsafeBytes(of: UInt64(blob.count).littleEndian) { out += $0 }
        withUnsafeBytes(of: fnv1a(blob).littleEndian) { out += $0 }
        return Data(out + blob)
    }

    /// Writes `blob` in its envelope to a temporary file in the same folder, then renames it over
    /// the cache (rename is atomic within a file system: a reader, or a process that dies halfway,
    /// never sees a half-written cache; a torn write after a power cut fails the envelope's checks).
    /// Creates the folder when missing. POSIX calls, so a failure names the system's reason.
    func save(_ blob: [UInt8]) throws(VulkanError) {
        let folder = url.deletingLastPathComponent().path
        try Self.makeFolder(folder)
        let temporary = folder + "/.\(url.lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard descriptor >= 0 else { throw .pipelineCache("cannot write \(temporary): \(Self.systemReason())") }
        let bytes = [UInt8](Self.wrap(blob))
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + written, bytes.count - written) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let reason = Self.systemReason()
                close(descriptor)
                unlink(temporary)
                throw .pipelineCache("cannot write \(temporary): \(reason)")
            }
            written += n
        }
        guard close(descriptor) == 0 else {
            let reason = Self.systemReason()
            unlink(temporary)
            throw .pipelineCache("cannot write \(temporary): \(reason)")
        }
        guard rename(temporary, url.path) == 0 else {
            let reason = Self.systemReason()
            unlink(temporary)
            throw .pipelineCache("cannot rename \(temporary) to \(url.path): \(reason)")
        }
    }

    /// mkdir -p.
    static func makeFolder(_ path: String) throws(VulkanError) {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw .pipelineCache("cannot create the folder \(path): \(systemReason())" + (current == path ? "" : " (at \(current))"))
            }
        }
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue else {
            throw .pipelineCache("cannot create the folder \(path): a file of that name is in the way")
        }
    }

    static func systemReason() -> String { String(cString: strerror(errno)) }

    static func littleEndian<T: FixedWidthInteger>(_ bytes: [UInt8], at offset: Int, as: T.Type) -> T {
        (0..<MemoryLayout<T>.size).reduce(T.zero) { $0 | T(bytes[offset + $1]) << (8 * $1) }
    }

    /// FNV-1a, 64 bits.
    static func fnv1a(_ bytes: [UInt8]) -> UInt64 {
        bytes.withUnsafeBufferPointer { buffer in
            var hash: UInt64 = 0xCBF2_9CE4_8422_2325
            for byte in buffer { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
            return hash
        }
    }
}
