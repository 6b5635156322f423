import CVulkan

/// Why the Vulkan backend could not start or run. Every case reads as one line that says what was
/// attempted and what was found, so the CLI can print it as is.
public enum VulkanError: Error, Equatable, CustomStringConvertible {
    /// libvulkan.so.1 could not be opened (Debian: apt install libvulkan1 and a driver).
    case loaderMissing(String)
    /// A Vulkan entry point the backend needs is absent from the loader or driver.
    case missingFunction(String)
    /// A Vulkan call returned an error code.
    case call(String, result: Int32)
    /// No Vulkan device, or none that can run compute shaders.
    case noDevice(String)
    /// `--device N` named a device that does not exist.
    case deviceIndexOutOfRange(index: Int, count: Int)
    /// The device lacks something the backend needs (API version, a limit, a memory type).
    case unsupported(String)
    /// The validation layer reported errors (tests fail on these).
    case validation([String])
    /// A capture used in a way a replay cannot reproduce (a host read inside it, nesting).
    case captureMisuse(String)
    /// An environment variable or option with a value the backend does not know.
    case invalidSetting(String)
    /// The pipeline-cache file could not be written (the backend goes on without it).
    case pipelineCache(String)

    public var description: String {
        switch self {
        case let .loaderMissing(detail):
            return "Vulkan is not available: cannot load libvulkan.so.1 (\(detail)); install a Vulkan loader and driver (Debian: libvulkan1 mesa-vulkan-drivers) or use --backend cpu"
        case let .missingFunction(name):
            return "Vulkan: the loader or driver lacks \(name)"
        case let .call(name, result):
            return "Vulkan: \(name) failed with \(VulkanError.resultName(result))"
        case let .noDevice(detail):
            return "Vulkan: no usable device (\(detail)); use --backend cpu"
        case let .deviceIndexOutOfRange(index, count):
            return "Vulkan: device index \(index) does not exist (\(count) device\(count == 1 ? "" : "s") found; list them with `streamdiffusion devices`)"
        case let .unsupported(detail):
            return "Vulkan: the device does not support \(detail)"
        case let .invalidSetting(detail):
            return "Vulkan: invalid setting \(detail)"
        case let .pipelineCache(detail):
            return "Vulkan pipeline cache: \(detail)"
        case let .captureMisuse(detail):
            return "Vulkan capture: \(detail) is not possible (a replay runs without the host)"
        case let .validation(messages):
            return "Vulkan validation: \(messages.count) error\(messages.count == 1 ? "" : "s"): \(messages.prefix(3).joined(separator: " | "))"
        }
    }

    /// An allocation failed for lack of device or host memory.
    var isOutOfMemory: Bool {
        if case let .call(_, result) = self { return result == VK_ERROR_OUT_OF_DEVICE_MEMORY.rawValue || result == VK_ERROR_OUT_OF_HOST_MEMORY.rawValue }
        return false
    }

    static func resultName(_ code: Int32) -> String {
        switch code {
        case -1: return "VK_ERROR_OUT_OF_HOST_MEMORY"
        case -2: return "VK_ERROR_OUT_OF_DEVICE_MEMORY"
        case -3: return "VK_ERROR_INITIALIZATION_FAILED"
        case -4: return "VK_ERROR_DEVICE_LOST"
        case -5: return "VK_ERROR_MEMORY_MAP_FAILED"
        case -6: return "VK_ERROR_LAYER_NOT_PRESENT"
        case -7: return "VK_ERROR_EXTENSION_NOT_PRESENT"
        case -8: return "VK_ERROR_FEATURE_NOT_PRESENT"
        case -9: return "VK_ERROR_INCOMPATIBLE_DRIVER"
        case -10: return "VK_ERROR_TOO_MANY_OBJECTS"
        case -1_000_069_000: return "VK_ERROR_OUT_OF_POOL_MEMORY"
        case 2: return "VK_TIMEOUT"
        default: return "VkResult \(code)"
        }
    }
}

/// Throws `VulkanError.call` unless `result` is VK_SUCCESS.
@inline(__always)
func check(_ result: VkResult, _ name: @autoclosure () -> String) throws {
    guard result == VK_SUCCESS else { throw VulkanError.call(name(), result: result.rawValue) }
}
