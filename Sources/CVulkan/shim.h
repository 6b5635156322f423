// Vulkan's types and constants only (Debian libvulkan-dev). VK_NO_PROTOTYPES: no function is linked;
// the backend opens libvulkan.so.1 at run time and loads every entry point through
// vkGetInstanceProcAddr / vkGetDeviceProcAddr, so the program starts (and the CPU backend runs)
// on machines without a Vulkan loader, and the Vulkan backend reports the loader as missing.
#define VK_NO_PROTOTYPES 1
#include <vulkan/vulkan.h>
#include <dlfcn.h>

// Macros that do not import into Swift, re-exported as constants (DESIGN.md §9).
static const uint32_t sd_vk_api_version_1_0 = VK_API_VERSION_1_0;
static const uint32_t sd_vk_api_version_1_1 = VK_API_VERSION_1_1;
static const uint32_t sd_vk_api_version_1_2 = VK_API_VERSION_1_2;
static const uint32_t sd_vk_api_version_1_3 = VK_API_VERSION_1_3;
static const uint64_t sd_vk_whole_size = VK_WHOLE_SIZE;
static const uint32_t sd_vk_queue_family_ignored = VK_QUEUE_FAMILY_IGNORED;

static inline uint32_t sd_vk_version_major(uint32_t v) { return VK_API_VERSION_MAJOR(v); }
static inline uint32_t sd_vk_version_minor(uint32_t v) { return VK_API_VERSION_MINOR(v); }
static inline uint32_t sd_vk_version_patch(uint32_t v) { return VK_API_VERSION_PATCH(v); }

// VK_KHR_cooperative_matrix (Vulkan headers 1.3.255+; Debian 12 ships 1.3.239), declared here with
// sd_ names so they never clash with a newer header's. Layouts and values from the Vulkan registry.
static const VkStructureType sd_vk_structure_type_cooperative_matrix_features = (VkStructureType)1000506000;
static const VkStructureType sd_vk_structure_type_cooperative_matrix_properties = (VkStructureType)1000506001;
static const VkStructureType sd_vk_structure_type_cooperative_matrix_device_properties = (VkStructureType)1000506002;
typedef struct sd_VkPhysicalDeviceCooperativeMatrixFeaturesKHR {
    VkStructureType sType;
    void *pNext;
    VkBool32 cooperativeMatrix;
    VkBool32 cooperativeMatrixRobustBufferAccess;
} sd_VkPhysicalDeviceCooperativeMatrixFeaturesKHR;
typedef struct sd_VkPhysicalDeviceCooperativeMatrixPropertiesKHR {
    VkStructureType sType;
    void *pNext;
    VkShaderStageFlags cooperativeMatrixSupportedStages;
} sd_VkPhysicalDeviceCooperativeMatrixPropertiesKHR;
// VkComponentTypeKHR and VkScopeKHR are 32-bit enums: kept as int32_t.
typedef struct sd_VkCooperativeMatrixPropertiesKHR {
    VkStructureType sType;
    void *pNext;
    uint32_t MSize, NSize, KSize;
    int32_t AType, BType, CType, ResultType;
    VkBool32 saturatingAccumulation;
    int32_t scope;
} sd_VkCooperativeMatrixPropertiesKHR;
typedef VkResult (*sd_PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR)(
    VkPhysicalDevice physicalDevice, uint32_t *pPropertyCount, sd_VkCooperativeMatrixPropertiesKHR *pProperties);
