// The daemon's configuration: what `lorad serve` reads from lorad.toml (config/lorad.toml documents
// every key) and overrides with flags. A plain value with built-in defaults, so `lorad serve`
// without a file runs as documented and tests can build one field by field. Reading and checking
// live in ServerConfig+Parse.swift and ConfigKeys.swift; what SIGHUP can change in
// ServerConfig+Reload.swift.

import Llama
import LoRA
import Logging

public struct ServerConfig: Sendable, Equatable {
    public var model = ModelSection()
    public var adapters = AdaptersSection()
    public var server = ServerSection()
    public var engine = EngineSection()
    public var admin = AdminSection()
    /// [[tenants]]: who may use the API once any is configured (TenantConfig.swift).
    public var tenants: [TenantConfig] = []
    public var training = TrainingSection()
    public var log = LogSection()

    public init() {}

    /// What `lorad serve` runs with when no file and no flags say otherwise.
    public static let defaults = ServerConfig()

    /// [model]: the one base model every adapter runs on.
    public struct ModelSection: Sendable, Equatable {
        /// GGUF file of the base model.
        public var path = "/var/lib/lorad/models/SmolLM2-135M-Instruct.Q4_1.gguf"
        /// The `model` name clients use for the base without an adapter, and what /v1/models lists.
        public var servedModelName = "base"
        /// Worker threads for the matrix products; 0 means one per core.
        public var threads = 0
        /// A built-in template name (chatml, llama3, gemma) or a Jinja file; nil: the model's own.
        public var chatTemplate: String? = nil
        /// Positions one sequence may hold (prompt + generated); capped by the model's at load.
        public var context = 4096
        /// How activations are rounded (see LlamaModel.Numerics).
        public var numerics: LlamaModel.Numerics = .f32

        public init() {}
    }

    /// [adapters]: where the adapter registry lives.
    public struct AdaptersSection: Sendable, Equatable {
        public var dir = "/var/lib/lorad/adapters"
        /// How often the registry is rescanned besides file-system events and SIGHUP (0: never).
        public var rescanInterval: Duration = .seconds(10)
        /// Directories the admin API may import adapters from by path (`POST .../versions`,
        /// vLLM's `load_lora_adapter`); empty: imports by path are refused.
        public var importRoots: [String] = []
        /// Bytes the adapter versions in memory may hold together (f32 modules and the kernels'
        /// copy). Adapters load on first use; past the budget the least recently used are evicted,
        /// except preloaded, merged and in-use ones.
        public var cacheBytes = 256 << 20
        /// Adapters loaded at start (and when a new version appears) and never evicted.
        public var preload: [String] = []
        /// Bytes the merged copies (`POST /v1/adapters/NAME/merge`) may hold together.
        public var mergedBytes = 1 << 30
        /// How merged matrices are stored: in the base matrix's own type (the base's speed, its
        /// quantization applied to W + s·B·A), or f16/f32 (closer to the low-rank path, slower on a
        /// quantized base).
        public var mergedType: MergeStorage = .baseType
        /// Adapters merged as soon as they are served (and again after a new version), as if an
        /// operator had called `POST /v1/adapters/NAME/merge`.
        public var merge: [String] = []

        public init() {}
    }

    /// [admin]: who may change the registry through the API.
    public struct AdminSection: Sendable, Equatable {
        /// Peer uids (SO_PEERCRED, Unix socket only) allowed the admin API; unset: the daemon's own
        /// uid and root; an empty list: no uid (only the admin token).
        public var uids: [Int]? = nil
        /// SHA-256 of the admin token (`Authorization: Bearer`): admin rights without a uid, over
        /// TCP too.
        public var tokenSHA256: [UInt8]? = nil
        /// Largest body of an adapter upload (`POST /v1/adapters/NAME/versions` with the files in
        /// the body), for these callers only; every other request keeps `server.max_body_bytes`.
        public var maxUploadBytes = 256 << 20

        public init() {}
    }

    /// [server]: listeners and the HTTP limits that protect the loop from slow or greedy clients.
    public struct ServerSection: Sendable, Equatable {
        /// The Unix socket the API listens on (unless systemd passes sockets in).
        public var socket = "/run/lorad/lorad.sock"
        /// Permission bits of the socket file: who may connect.
        public var socketMode: UInt32 = 0o660
        /// Group of the socket file (a name or a numeric id); nil keeps the daemon's group.
        public var socketGroup: String? = nil
        /// An optional TCP listener in addition to the socket.
        public var tcp: TCPAddress? = nil
        /// Without it, `tcp` must be a loopback address.
        public var tcpAllowRemote = false
        /// Largest request body accepted; larger ones get 413.
        public var maxBodyBytes = 8 << 20
        /// Largest request head (request line and headers); larger ones get 431.
        public var maxHeaderBytes = 32 << 10
        /// A keep-alive connection with no request in progress is closed after this long.
        public var idleTimeout: Duration = .seconds(60)
        /// A request whose head and body have not fully arrived within this long gets 408.
        public var readTimeout: Duration = .seconds(30)
        /// Bytes of response queued for one connection before the server stops producing for it.
        public var writeBufferBytes = 1 << 20
        /// A client that leaves its write buffer full this long is disconnected (and its generation
        /// cancelled), so one stalled reader cannot hold a batch slot forever.
        public var slowReaderTimeout: Duration = .seconds(30)
        /// On SIGTERM, running requests get this long to finish before they are cut off.
        public var drainTimeout: Duration = .seconds(30)
        /// Client connections open at once; past it new ones get a short 503 and are closed. 0: from
        /// the file-descriptor limit (see `ConnectionLimits`).
        public var maxConnections = 0
        /// Connections one peer uid may hold on the Unix socket, so one runaway local client cannot
        /// take every slot. 0: three quarters of the connection limit.
        public var maxConnectionsPerUID = 0

        public init() {}
    }

    /// [engine]: the continuous-batching scheduler's limits.
    public struct EngineSection: Sendable, Equatable {
        /// Sequences decoded together in one batch; more wait in the queue.
        public var maxSequences = 32
        /// Bytes all KV caches (live sequences and the prefix cache) may hold together.
        public var kvBudgetBytes = 1 << 30
        /// Requests waiting for a slot, over all adapters; past it, requests get 429.
        public var queueLimit = 256
        /// Requests waiting for a slot with one adapter, so a flood on one adapter cannot fill the queue.
        public var perAdapterQueueLimit = 64
        /// Prompt tokens prefilled per step over all new sequences (chunked prefill).
        public var prefillChunk = 256
        public var prefillFirst = true
        /// Keep the KV of finished prompts and reuse the longest matching prefix.
        public var prefixCache = true
        /// `max_tokens` for requests that give none (capped to what the context has left); 0: until
        /// the context is full. 512, because a small model left to run at temperature 1 can fill a
        /// 4096-token context with noise (OpenAI and vLLM cap by the context, llama-server by n_predict).
        public var maxTokensDefault = 512

        public init() {}
    }

    /// [training]: training jobs run inside the daemon (POST /v1/adapters/NAME/train,
    /// /v1/fine_tuning/jobs).
    public struct TrainingSection: Sendable, Equatable {
        /// Jobs waiting behind the running one; past it, a new job gets 429.
        public var maxQueued = 8
        /// The share of the compute pool a job may hold while serving is busy (ComputePool's
        /// background caller): 0.5 on 2 threads is one core; 0 trains only while serving idles.
        public var maxShare = 0.5

        public init() {}
    }

    /// [log]: stderr logging.
    public struct LogSection: Sendable, Equatable {
        public var level: Logger.Level = .info

        public init() {}
    }
}
