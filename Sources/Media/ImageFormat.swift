/// The still-image formats the module reads and writes.
public enum ImageFormat: String, Sendable, CaseIterable {
    case png
    case jpeg

    /// "PNG" / "JPEG", for messages.
    public var name: String { rawValue.uppercased() }

    /// The format a file name's extension asks for when writing: `png`, `jpg` or `jpeg`
    /// (any case). Reading never looks at the extension.
    public init?(pathExtension: String) {
        switch pathExtension.lowercased() {
        case "png": self = .png
        case "jpg", "jpeg": self = .jpeg
        default: return nil
        }
    }

    /// The format whose signature starts `bytes`: PNG's 8-byte signature, or JPEG's SOI marker
    /// followed by the start of another marker (`FF D8 FF`).
    public init?(sniffing bytes: UnsafeRawBufferPointer) {
        if bytes.count >= 8, Array(bytes.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] {
            self = .png
        } else if bytes.count >= 3, bytes[0] == 0xFF, bytes[1] == 0xD8, bytes[2] == 0xFF {
            self = .jpeg
        } else {
            return nil
        }
    }
}

/// JPEG chroma subsampling for encoding. Pillow's default (and so diffusers' when it saves JPEG)
/// is 4:2:0.
public enum JPEGSubsampling: Sendable {
    case yuv444
    case yuv422
    case yuv420
}
