import Tensors

print("streamdiffusion: \(try CPUBackend(precision: .automatic))")
