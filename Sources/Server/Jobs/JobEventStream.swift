// One client following a job's progress (`GET /v1/jobs/{id}/events`): Server-Sent Events, one
// `data:` line per event (the job's `fine_tuning.job.event` objects, each with the job's status at
// that moment), the events so far first, then each new one; when the job ends, its final record as
// a last event and `data: [DONE]`. Loop thread only. A client that leaves stops being written to;
// the job itself goes on.

import Foundation
import HTTP
import JSON

final class JobEventStream: ResponseProducer {
    private let request: RoutedRequest
    private let responder: Responder
    private let final: () -> JSONValue?
    private let leave: (JobEventStream) -> Void
    private var open = true

    /// `final`: the job's record when it ends; `leave`: called when the client goes away first.
    init(_ request: RoutedRequest, responder: Responder, final: @escaping () -> JSONValue?, leave: @escaping (JobEventStream) -> Void) {
        self.request = request
        self.responder = responder
        self.final = final
        self.leave = leave
        var h = HTTPHeaders()
        h.add("Content-Type", "text/event-stream")
        h.add("Cache-Control", "no-cache")
        request.connection.producer = self
        request.connection.startStream(status: 200, headers: h, keepAlive: responder.keepAlive(request.http))
    }

    func send(_ e: JobEvent, jobID: String) {
        guard open else { return }
        request.connection.writeChunk(ServerSentEvents.event(data: e.json(jobID: jobID).serialized()))
    }

    func end() {
        guard open else { return }
        open = false
        if let job = final() {
            request.connection.writeChunk(ServerSentEvents.event(data: job.serialized(), event: "job"))
        }
        request.connection.writeChunk(ServerSentEvents.done)
        request.connection.endStream(keepAlive: responder.keepAlive(request.http))
        responder.logRequest(request.http, status: 200, endpoint: request.endpoint, tenant: request.caller.tenantLabel, adapter: "",
                             started: request.started)
    }

    // Progress events are small and few: back-pressure has nothing to pause.
    func pause() {}
    func resume() {}

    func cancel() {
        guard open else { return }
        open = false
        leave(self)
        responder.logRequest(request.http, status: 200, endpoint: request.endpoint, tenant: request.caller.tenantLabel, adapter: "",
                             started: request.started, detail: "client left")
    }
}
