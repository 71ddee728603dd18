// @ts-check
/**
 * The video room (docs/signaling.md, "Video rooms").
 *
 * 1. Pre-join check: camera preview, microphone level, device choice.
 * 2. Join: `room.join` over the page's hub socket → `room.joined` → the
 *    publisher peer connection (our microphone, camera and, later, a screen
 *    share) offers; the subscriber peer connection answers the server's
 *    offers and carries the other participant's media. Candidates trickle
 *    both ways.
 * 3. Socket loss or a failed media connection rejoins by itself; a refusal,
 *    a cancellation or the end of the window says so and stops.
 *
 * `window.consulta.pcs` holds the live peer connections (for tests and
 * for people debugging a call); it stays empty until the server lets us in.
 */

import { api, ApiError } from '../api.js';
import { byId, h, replace } from '../dom.js';
import { hub } from '../hub.js';
import { requireUser } from '../session.js';
import { inZone, serverClock } from '../time.js';

/** @typedef {import('../protocol.js').ServerMessage} ServerMessage */
/** @typedef {import('../protocol.js').RoomJoined} RoomJoined */
/** @typedef {import('../protocol.js').PcTarget} PcTarget */
/** @typedef {import('../protocol.js').PresentUser} PresentUser */
/** @typedef {import('../types.js').Appointment} Appointment */
/** @typedef {import('../types.js').User} User */

/**
 * @typedef {'loading'|'prejoin'|'connecting'|'waiting'|'in-call'|'reconnecting'|'lost'|'left'
 *   |'cancelled'|'ended'|'replaced'|'refused'} RoomState
 */

/** @type {{pcs: {publisher?: RTCPeerConnection, subscriber?: RTCPeerConnection}, state: RoomState, hub: typeof hub}} */
const consulta = { pcs: {}, state: 'loading', hub };
Object.assign(window, { consulta });

/** How long reconnecting may take before the page says the connection is lost. */
const LOST_AFTER_MS = 25_000;
/** Rejoins in a row after media failures before giving up. */
const MAX_MEDIA_RETRIES = 3;

/** What each refusal of `room.join` means, in words. */
const REFUSALS = {
  room_not_found: 'There is no appointment here, or it is not one of yours.',
  appointment_cancelled: 'This appointment was cancelled.',
  room_not_open_yet: 'The room is not open yet.',
  room_closed: 'This appointment is over: its room has closed.',
  already_in_room: 'You are already in a room in this tab.',
};

const appointmentId = decodeURIComponent(location.pathname.split('/').pop() || '');
const title = byId('room-title', HTMLElement);
const facts = byId('room-facts', HTMLElement);
const stateBox = byId('room-state', HTMLElement);
const actionsBox = byId('room-actions', HTMLElement);
const retryButton = byId('retry-button', HTMLButtonElement);
const prejoin = byId('prejoin', HTMLElement);
const preview = byId('preview', HTMLVideoElement);
const previewEmpty = byId('preview-empty', HTMLElement);
const cameraSelect = byId('camera-select', HTMLSelectElement);
const micSelect = byId('mic-select', HTMLSelectElement);
const micLevel = byId('mic-level', HTMLMeterElement);
const deviceNote = byId('device-note', HTMLElement);
const joinButton = byId('join-button', HTMLButtonElement);
const call = byId('call', HTMLElement);
const remoteVideo = byId('remote-video', HTMLVideoElement);
const remotePlaceholder = byId('remote-placeholder', HTMLElement);
const remoteScreen = byId('remote-screen', HTMLVideoElement);
const localVideo = byId('local-video', HTMLVideoElement);
const peerMediaLine = byId('peer-media', HTMLElement);
const muteButton = byId('mute-button', HTMLButtonElement);
const cameraButton = byId('camera-button', HTMLButtonElement);
const screenButton = byId('screen-button', HTMLButtonElement);
const leaveButton = byId('leave-button', HTMLButtonElement);

const user = await requireUser();
if (user) await main(user);

/** @param {User} me */
async function main(me) {
  const fmt = inZone(me.timezone);
  /** @type {Appointment} */
  let appointment;
  try {
    ({ appointment } = await api.appointment(appointmentId));
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      show('refused', h('strong', {}, 'You cannot join this room.'), ' ', REFUSALS.room_not_found);
    } else {
      show('lost', h('strong', {}, 'Could not load the appointment.'), ' ',
        error instanceof Error ? error.message : String(error));
      retryButton.hidden = false;
      retryButton.textContent = 'Reload';
      retryButton.addEventListener('click', () => location.reload());
    }
    return;
  }
  const other = appointment.doctor.id === me.id ? appointment.patient : appointment.doctor;
  const otherRole = appointment.doctor.id === me.id ? 'patient' : 'doctor';
  const otherLabel = otherRole === 'doctor' ? 'the doctor' : 'the patient';
  document.title = `Room: ${other.name} · Consulta`;
  title.textContent = `Video call with ${other.name}`;
  replace(facts, h('p', { class: 'muted room-when' },
    `${fmt.dateTime(appointment.start)}–${fmt.time(appointment.end)} (${fmt.zone})`));
  const opensAt = Date.parse(appointment.start) - 15 * 60_000;

  if (appointment.status === 'cancelled') {
    show('cancelled', h('strong', {}, 'This appointment was cancelled.'),
      appointment.cancel_reason ? ` Reason: ${appointment.cancel_reason}` : '');
    return;
  }

  // --- local media ------------------------------------------------------
  /** @type {MediaStream | null} */
  let localStream = null;
  /** @type {MediaStreamTrack | null} */
  let screenTrack = null;
  let micOn = true;
  let cameraOn = true;
  /** @type {{context: AudioContext, frame: number} | null} */
  let meter = null;

  /**
   * Asks for the chosen devices; falls back to sound only, then to
   * receiving only, and says why.
   */
  async function acquire() {
    const cameraId = cameraSelect.value;
    const micId = micSelect.value;
    /** @type {MediaStreamConstraints} */
    const wanted = {
      audio: micId ? { deviceId: { exact: micId } } : true,
      video: cameraId ? { deviceId: { exact: cameraId }, width: { ideal: 1280 }, height: { ideal: 720 } } : { width: { ideal: 1280 }, height: { ideal: 720 } },
    };
    const attempts = /** @type {[MediaStreamConstraints, string][]} */ ([
      [wanted, ''],
      [{ audio: wanted.audio, video: false }, 'audio-only'],
      [{ audio: false, video: wanted.video }, 'video-only'],
    ]);
    /** @type {unknown} */
    let firstError = null;
    for (const [constraints, mode] of attempts) {
      try {
        const stream = await navigator.mediaDevices.getUserMedia(constraints);
        return { stream, mode, error: firstError };
      } catch (error) {
        firstError = firstError || error;
        if (error instanceof DOMException && error.name === 'NotAllowedError') break;
      }
    }
    return { stream: null, mode: 'receive-only', error: firstError };
  }

  /** @param {unknown} error @param {string} mode */
  function deviceMessage(error, mode) {
    const name = error instanceof DOMException ? error.name : '';
    if (mode === '') return '';
    if (name === 'NotAllowedError' || name === 'SecurityError') {
      return 'Your browser blocked the camera and microphone. You can still join to see and hear the other person; to be seen and heard, allow them in the site settings and reload.';
    }
    if (mode === 'audio-only') {
      return name === 'NotFoundError' || name === 'OverconstrainedError'
        ? 'No camera was found: you will join with sound only.'
        : 'The camera could not be started (is another program using it?): you will join with sound only.';
    }
    if (mode === 'video-only') return 'No microphone was found: the other person will see you but not hear you.';
    return 'No camera or microphone could be started: you can join to see and hear the other person only.';
  }

  async function startPreview() {
    stopLocal();
    const { stream, mode, error } = await acquire();
    localStream = stream;
    preview.srcObject = stream;
    previewEmpty.hidden = !!stream?.getVideoTracks().length;
    deviceNote.textContent = deviceMessage(error, mode);
    deviceNote.classList.toggle('is-error', mode !== '');
    await listDevices();
    startMeter();
  }

  async function listDevices() {
    /** @type {MediaDeviceInfo[]} */
    let devices = [];
    try {
      devices = await navigator.mediaDevices.enumerateDevices();
    } catch {
      devices = [];
    }
    const current = {
      videoinput: localStream?.getVideoTracks()[0]?.getSettings().deviceId || cameraSelect.value,
      audioinput: localStream?.getAudioTracks()[0]?.getSettings().deviceId || micSelect.value,
    };
    for (const [select, kind, none] of /** @type {const} */ ([[cameraSelect, 'videoinput', 'No camera'], [micSelect, 'audioinput', 'No microphone']])) {
      const found = devices.filter((d) => d.kind === kind && d.deviceId);
      replace(select, ...found.map((d, i) => h('option', { value: d.deviceId, selected: d.deviceId === current[kind] },
        d.label || `${kind === 'videoinput' ? 'Camera' : 'Microphone'} ${i + 1}`)));
      if (found.length === 0) replace(select, h('option', { value: '' }, none));
      select.disabled = found.length === 0;
    }
  }

  function startMeter() {
    stopMeter();
    const track = localStream?.getAudioTracks()[0];
    if (!track || typeof AudioContext === 'undefined') return;
    const context = new AudioContext();
    const analyser = context.createAnalyser();
    analyser.fftSize = 1024;
    context.createMediaStreamSource(new MediaStream([track])).connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    const state = { context, frame: 0 };
    const draw = () => {
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const s of samples) sum += s * s;
      const rms = Math.sqrt(sum / samples.length);
      // Speech sits around 0.02–0.2 RMS; stretch it over the bar.
      const level = Math.min(1, rms * 4);
      micLevel.value = level;
      micLevel.textContent = `${Math.round(level * 100)}%`;
      state.frame = requestAnimationFrame(draw);
    };
    draw();
    meter = state;
  }

  function stopMeter() {
    if (!meter) return;
    cancelAnimationFrame(meter.frame);
    meter.context.close().catch(() => {});
    meter = null;
  }

  function stopLocal() {
    stopMeter();
    for (const track of localStream?.getTracks() || []) track.stop();
    localStream = null;
  }

  cameraSelect.addEventListener('change', () => startPreview());
  micSelect.addEventListener('change', () => startPreview());

  // --- signaling and peer connections ----------------------------------
  /** Bumped on every (re)join; callbacks of an older attempt do nothing. */
  let generation = 0;
  /** Whether the user wants to be in the call (false after Leave or a final close). */
  let wanted = false;
  /** The server has us in the room on the current socket. */
  let inRoom = false;
  let mediaRetries = 0;
  /** @type {RTCIceServer[]} */
  let iceServers = [];
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let lostTimer;
  /** @type {PresentUser[]} */
  let present = [];
  /** @type {RTCIceCandidateInit[]} */
  let pendingSubscriberCandidates = [];
  /** @type {RTCIceCandidateInit[]} */
  let pendingPublisherCandidates = [];
  let publishing = false;
  let republish = false;
  /** @type {Promise<void>} */
  let subscriberChain = Promise.resolve();
  /** @type {RTCRtpSender | null} */
  let screenSender = null;
  const remoteStream = new MediaStream();

  /**
   * @param {RTCPeerConnection} pc
   * @param {PcTarget} target
   * @param {number} gen
   */
  function wire(pc, target, gen) {
    pc.onicecandidate = (event) => {
      if (gen !== generation) return;
      const c = event.candidate;
      hub.send({
        type: 'rtc.candidate', target,
        candidate: c ? c.candidate : '',
        sdp_mid: c ? c.sdpMid : null,
        sdp_mline_index: c ? c.sdpMLineIndex : null,
      });
    };
    pc.onconnectionstatechange = () => {
      if (gen !== generation) return;
      if (pc.connectionState === 'failed') mediaFailed(`${target} connection failed`);
      if (pc.connectionState === 'connected') {
        mediaRetries = 0;
        updateCallState();
      }
    };
  }

  /** @param {RTCPeerConnection} pc @param {RTCIceCandidateInit} candidate */
  function addCandidate(pc, candidate) {
    pc.addIceCandidate(candidate.candidate ? candidate : undefined).catch((error) => {
      console.warn('addIceCandidate', error);
    });
  }

  function newPublisher() {
    const gen = generation;
    const pc = new RTCPeerConnection({ iceServers, bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' });
    consulta.pcs.publisher = pc;
    wire(pc, 'publisher', gen);
    const audio = localStream?.getAudioTracks()[0] || null;
    const video = localStream?.getVideoTracks()[0] || null;
    const stream = localStream || new MediaStream();
    if (audio) pc.addTrack(audio, stream);
    if (video) pc.addTrack(video, stream);
    // Without any device we still publish (nothing), so the server has a
    // complete participant and sends the other side's media.
    if (!audio && !video) pc.addTransceiver('audio', { direction: 'sendonly' });
    if (screenTrack) screenSender = pc.addTrack(screenTrack, new MediaStream([screenTrack]));
    return pc;
  }

  /** Sends a (new) publish offer; one at a time, the latest state wins. */
  async function publish() {
    if (publishing) {
      republish = true;
      return;
    }
    const pc = consulta.pcs.publisher;
    if (!pc) return;
    const gen = generation;
    publishing = true;
    try {
      const offer = await pc.createOffer();
      if (gen !== generation) return;
      await pc.setLocalDescription(offer);
      hub.send({ type: 'rtc.publish_offer', sdp: pc.localDescription?.sdp || offer.sdp || '' });
    } catch (error) {
      publishing = false;
      mediaFailed(`publish offer: ${error}`);
    }
  }

  /** @param {string} sdp */
  async function onPublishAnswer(sdp) {
    const pc = consulta.pcs.publisher;
    const gen = generation;
    if (!pc) return;
    try {
      await pc.setRemoteDescription({ type: 'answer', sdp });
      if (gen !== generation) return;
      for (const c of pendingPublisherCandidates) addCandidate(pc, c);
      pendingPublisherCandidates = [];
    } catch (error) {
      mediaFailed(`publish answer: ${error}`);
      return;
    } finally {
      publishing = false;
    }
    if (republish) {
      republish = false;
      publish();
    }
  }

  /** @param {string} sdp */
  function onSubscribeOffer(sdp) {
    const gen = generation;
    subscriberChain = subscriberChain.then(async () => {
      if (gen !== generation) return;
      let pc = consulta.pcs.subscriber;
      if (!pc) {
        pc = new RTCPeerConnection({ iceServers, bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' });
        consulta.pcs.subscriber = pc;
        wire(pc, 'subscriber', gen);
        pc.ontrack = (event) => onRemoteTrack(event.track);
      }
      try {
        await pc.setRemoteDescription({ type: 'offer', sdp });
        const answer = await pc.createAnswer();
        await pc.setLocalDescription(answer);
        if (gen !== generation) return;
        hub.send({ type: 'rtc.subscribe_answer', sdp: pc.localDescription?.sdp || answer.sdp || '' });
        for (const c of pendingSubscriberCandidates) addCandidate(pc, c);
        pendingSubscriberCandidates = [];
        pruneRemote(pc);
      } catch (error) {
        mediaFailed(`subscribe offer: ${error}`);
      }
    });
  }

  /** @param {MediaStreamTrack} track */
  function onRemoteTrack(track) {
    if (track.kind === 'video' && track.id.startsWith('screen-')) {
      remoteScreen.srcObject = new MediaStream([track]);
      remoteScreen.hidden = false;
      remoteScreen.play().catch(() => {});
      track.addEventListener('ended', () => { remoteScreen.hidden = true; });
      return;
    }
    for (const old of remoteStream.getTracks()) {
      if (old.kind === track.kind) remoteStream.removeTrack(old);
    }
    remoteStream.addTrack(track);
    if (remoteVideo.srcObject !== remoteStream) remoteVideo.srcObject = remoteStream;
    remoteVideo.play().catch(() => {});
    updateCallState();
    if (track.kind === 'video') {
      // No picture after 2 s (a lost keyframe): ask the sender for a fresh one.
      const gen = generation;
      setTimeout(() => {
        if (gen === generation && remoteVideo.videoWidth === 0) hub.send({ type: 'rtc.keyframe' });
      }, 2000);
    }
  }

  /** Drops remote tracks whose transceivers the server stopped sending. @param {RTCPeerConnection} pc */
  function pruneRemote(pc) {
    const live = new Set(pc.getTransceivers()
      .filter((t) => t.currentDirection === 'recvonly' || t.currentDirection === 'sendrecv')
      .map((t) => t.receiver.track.id));
    for (const track of remoteStream.getTracks()) {
      if (!live.has(track.id)) remoteStream.removeTrack(track);
    }
    const screen = remoteScreen.srcObject instanceof MediaStream ? remoteScreen.srcObject.getTracks()[0] : null;
    if (screen && !live.has(screen.id)) {
      remoteScreen.srcObject = null;
      remoteScreen.hidden = true;
    }
    updateCallState();
  }

  function closePeers() {
    for (const pc of [consulta.pcs.publisher, consulta.pcs.subscriber]) {
      if (!pc) continue;
      pc.onicecandidate = null;
      pc.onconnectionstatechange = null;
      pc.ontrack = null;
      pc.close();
    }
    consulta.pcs = {};
    screenSender = null;
    publishing = false;
    republish = false;
    pendingPublisherCandidates = [];
    pendingSubscriberCandidates = [];
    for (const track of remoteStream.getTracks()) remoteStream.removeTrack(track);
    remoteVideo.srcObject = null;
    remoteScreen.srcObject = null;
    remoteScreen.hidden = true;
  }

  /** Starts (or restarts) the join on the current socket. */
  function join() {
    generation += 1;
    closePeers();
    wanted = true;
    if (consulta.state !== 'reconnecting') show('connecting', 'Connecting…');
    if (hub.state !== 'connected') return; // The `connected` handler joins.
    if (inRoom) {
      // The media failed while the socket lives: leave first, then join (on `room.left`).
      hub.send({ type: 'room.leave' });
      return;
    }
    hub.send({ type: 'room.join', appointment_id: appointmentId });
  }

  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let rejoinTimer;

  /**
   * The media connection failed: rejoin shortly. A fatal server error
   * comes as `error` and then `room.closed` `failed`; both land here and
   * count once.
   * @param {string} why
   */
  function mediaFailed(why) {
    console.warn('media failed:', why);
    if (!wanted) return;
    if (rejoinTimer === undefined) {
      mediaRetries += 1;
      if (mediaRetries > MAX_MEDIA_RETRIES) {
        lost('The media connection could not be set up.');
        return;
      }
      reconnecting();
    }
    generation += 1;
    closePeers();
    clearTimeout(rejoinTimer);
    rejoinTimer = setTimeout(() => {
      rejoinTimer = undefined;
      if (wanted) join();
    }, 500);
  }

  function reconnecting() {
    show('reconnecting', h('strong', {}, 'Reconnecting…'), ' The call will continue by itself.');
    clearTimeout(lostTimer);
    lostTimer = setTimeout(() => {
      if (consulta.state === 'reconnecting') lost('The connection to the server was lost.');
    }, LOST_AFTER_MS);
  }

  /** @param {string} why */
  function lost(why) {
    closePeers();
    show('lost', h('strong', {}, 'Connection lost.'), ` ${why} Check your network, then retry.`);
    retryButton.hidden = false;
    retryButton.textContent = 'Retry';
    retryButton.focus();
  }

  /** @param {RoomJoined} joined */
  function onJoined(joined) {
    inRoom = true;
    iceServers = (joined.ice_servers || []).map((s) => ({ ...s }));
    present = joined.participants || [];
    clearTimeout(lostTimer);
    hub.inCall(true);
    enterCall();
    newPublisher();
    publish();
    sendMedia();
    updateCallState(joined.waiting_for);
  }

  function enterCall() {
    stopMeter();
    // The Join button disappears: keep keyboard focus in the call's controls.
    const hadFocus = prejoin.contains(document.activeElement) || document.activeElement === document.body;
    prejoin.hidden = true;
    call.hidden = false;
    localVideo.srcObject = localStream;
    localVideo.hidden = !localStream?.getVideoTracks().length;
    muteButton.disabled = !localStream?.getAudioTracks().length;
    cameraButton.disabled = !localStream?.getVideoTracks().length;
    screenButton.disabled = !navigator.mediaDevices || typeof navigator.mediaDevices.getDisplayMedia !== 'function';
    if (hadFocus) (muteButton.disabled ? leaveButton : muteButton).focus();
  }

  /** @param {('doctor'|'patient'|null)} [waitingFor] */
  function updateCallState(waitingFor) {
    if (!inRoom || !wanted) return;
    const otherHere = waitingFor === undefined ? present.some((p) => p.id === other.id) : waitingFor === null;
    const receiving = remoteStream.getVideoTracks().length > 0 || remoteStream.getAudioTracks().length > 0;
    if (!otherHere) {
      show('waiting', h('strong', {}, `Waiting for ${otherLabel}.`), ` ${other.name} has not joined yet; you will see them here as soon as they do.`);
      remotePlaceholder.textContent = `Waiting for ${other.name}…`;
      remotePlaceholder.hidden = false;
    } else {
      show('in-call', h('strong', {}, 'In call'), ` with ${other.name}.`);
      remotePlaceholder.textContent = receiving ? '' : `Connecting to ${other.name}…`;
      remotePlaceholder.hidden = receiving;
    }
  }

  function sendMedia() {
    hub.send({ type: 'rtc.media', audio: micOn && !!localStream?.getAudioTracks().length, video: cameraOn && !!localStream?.getVideoTracks().length, screen: !!screenTrack });
  }

  // --- hub events -------------------------------------------------------
  hub.onMessage((message) => {
    if (!wanted && message.type !== 'appointment.cancelled') return;
    switch (message.type) {
      case 'room.joined':
        if (message.appointment_id === appointmentId) onJoined(message);
        break;
      case 'room.left':
        inRoom = false;
        if (wanted) hub.send({ type: 'room.join', appointment_id: appointmentId });
        break;
      case 'room.presence':
        if (message.appointment_id !== appointmentId) break;
        present = message.participants;
        updateCallState();
        break;
      case 'room.closed':
        if (message.appointment_id !== appointmentId) break;
        inRoom = false;
        closed(message.reason);
        break;
      case 'appointment.cancelled':
        if (message.appointment.id === appointmentId) closed('cancelled', message.appointment.cancel_reason);
        break;
      case 'rtc.publish_answer':
        onPublishAnswer(message.sdp);
        break;
      case 'rtc.subscribe_offer':
        onSubscribeOffer(message.sdp);
        break;
      case 'rtc.candidate': {
        const candidate = { candidate: message.candidate, sdpMid: message.sdp_mid ?? null, sdpMLineIndex: message.sdp_mline_index ?? null };
        if (message.target === 'publisher') {
          const pc = consulta.pcs.publisher;
          if (pc && pc.remoteDescription) addCandidate(pc, candidate);
          else pendingPublisherCandidates.push(candidate);
        } else {
          const pc = consulta.pcs.subscriber;
          if (pc && pc.remoteDescription) addCandidate(pc, candidate);
          else pendingSubscriberCandidates.push(candidate);
        }
        break;
      }
      case 'rtc.peer_media':
        if (message.user_id !== other.id) break;
        peerMediaLine.textContent = [
          message.audio ? '' : `${other.name} has muted their microphone.`,
          message.video ? '' : `${other.name} has turned their camera off.`,
          message.screen ? `${other.name} is sharing their screen.` : '',
        ].filter(Boolean).join(' ');
        break;
      case 'error':
        onError(message.code, message.message, message.refers_to);
        break;
      default:
        break;
    }
  });

  hub.onState((state) => {
    if (!wanted) return;
    if (state === 'connected') {
      inRoom = false;
      join();
    } else if (state === 'reconnecting') {
      inRoom = false;
      closePeers();
      if (consulta.state !== 'reconnecting' && consulta.state !== 'lost') reconnecting();
    }
  });

  /**
   * @param {string} code
   * @param {string} message
   * @param {string} [refersTo]
   */
  function onError(code, message, refersTo) {
    if (refersTo === 'room.join' && !(code in REFUSALS) && code !== 'internal') {
      // Not a refusal (e.g. a server without video rooms): say so, keep Retry.
      lost(`The server could not start the call (${code}).`);
      return;
    }
    if (code in REFUSALS) {
      if (code === 'already_in_room') {
        // A join raced another: leave, then join again.
        inRoom = true;
        join();
        return;
      }
      wanted = false;
      inRoom = false;
      closePeers();
      hub.inCall(false);
      stopLocal();
      if (code === 'appointment_cancelled') {
        show('cancelled', h('strong', {}, 'This appointment was cancelled.'), ' There is no call to join.');
        return;
      }
      const text = code === 'room_not_open_yet'
        ? `The room opens 15 minutes before the appointment, at ${fmt.dateTime(opensAt)} (${fmt.zone}). Come back then.`
        : REFUSALS[/** @type {keyof typeof REFUSALS} */ (code)] || message;
      show('refused', h('strong', {}, code === 'room_not_open_yet' ? 'Not open yet.' : 'You cannot join this room.'), ' ', text);
      if (code === 'room_not_open_yet') {
        retryButton.hidden = false;
        retryButton.textContent = 'Try again';
      }
      return;
    }
    if (code === 'connect_timeout' || code === 'bad_sdp' || code === 'internal') {
      // connect_timeout and internal remove us from the room; bad_sdp does not.
      if (code !== 'bad_sdp') inRoom = false;
      mediaFailed(`${code}: ${message}`);
      return;
    }
    console.warn('hub error', code, message);
  }

  /** @param {string} reason @param {string | null} [cancelReason] */
  function closed(reason, cancelReason) {
    if (reason === 'failed') {
      mediaFailed('room closed: failed');
      return;
    }
    if (reason === 'shutdown') {
      // The socket closes next; the hub reconnects and its `connected` rejoins.
      closePeers();
      reconnecting();
      return;
    }
    wanted = false;
    closePeers();
    hub.inCall(false);
    stopLocal();
    stopScreen(false);
    call.hidden = true;
    if (reason === 'cancelled') {
      show('cancelled', h('strong', {}, 'The appointment was cancelled.'), cancelReason ? ` Reason: ${cancelReason}` : ' The call has ended.');
    } else if (reason === 'replaced') {
      show('replaced', h('strong', {}, 'You joined from another tab or device.'), ' The call continues there.');
      retryButton.hidden = false;
      retryButton.textContent = 'Use this tab instead';
    } else {
      show('ended', h('strong', {}, 'The call has ended.'), reason === 'ended' ? ' The appointment’s time is over.' : ' The room was closed.');
    }
  }

  // --- controls ---------------------------------------------------------
  joinButton.addEventListener('click', () => {
    joinButton.disabled = true;
    hub.start();
    join();
  });

  retryButton.addEventListener('click', async () => {
    retryButton.hidden = true;
    mediaRetries = 0;
    if (!localStream) {
      const { stream } = await acquire();
      localStream = stream;
    }
    if (hub.state !== 'connected') hub.retryNow();
    join();
  });

  muteButton.addEventListener('click', () => {
    micOn = !micOn;
    for (const track of localStream?.getAudioTracks() || []) track.enabled = micOn;
    muteButton.textContent = micOn ? 'Mute' : 'Unmute';
    muteButton.setAttribute('aria-pressed', String(!micOn));
    sendMedia();
  });

  cameraButton.addEventListener('click', () => {
    cameraOn = !cameraOn;
    for (const track of localStream?.getVideoTracks() || []) track.enabled = cameraOn;
    localVideo.hidden = !cameraOn;
    cameraButton.textContent = cameraOn ? 'Turn camera off' : 'Turn camera on';
    cameraButton.setAttribute('aria-pressed', String(!cameraOn));
    sendMedia();
  });

  screenButton.addEventListener('click', async () => {
    if (screenTrack) {
      stopScreen(true);
      return;
    }
    try {
      const stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
      const track = stream.getVideoTracks()[0];
      if (!track) return;
      screenTrack = track;
      track.addEventListener('ended', () => stopScreen(true));
      const pc = consulta.pcs.publisher;
      if (pc) {
        screenSender = pc.addTrack(track, stream);
        publish();
      }
      screenButton.textContent = 'Stop sharing';
      screenButton.setAttribute('aria-pressed', 'true');
      sendMedia();
    } catch (error) {
      // Cancelling the browser's picker is not an error worth a message.
      if (!(error instanceof DOMException && error.name === 'NotAllowedError')) {
        peerMediaLine.textContent = 'Screen sharing could not start.';
      }
    }
  });

  /** @param {boolean} renegotiate */
  function stopScreen(renegotiate) {
    const track = screenTrack;
    if (!track) return;
    screenTrack = null;
    track.stop();
    const pc = consulta.pcs.publisher;
    if (pc && screenSender) {
      try {
        pc.removeTrack(screenSender);
      } catch {
        // The connection is already closed.
      }
      screenSender = null;
      if (renegotiate) publish();
    }
    screenButton.textContent = 'Share screen';
    screenButton.setAttribute('aria-pressed', 'false');
    if (renegotiate) sendMedia();
  }

  leaveButton.addEventListener('click', () => {
    wanted = false;
    if (inRoom) hub.send({ type: 'room.leave' });
    inRoom = false;
    generation += 1;
    closePeers();
    hub.inCall(false);
    stopScreen(false);
    stopLocal();
    call.hidden = true;
    show('left', h('strong', {}, 'You left the call.'), ' ');
    retryButton.hidden = false;
    retryButton.textContent = 'Join again';
  });

  window.addEventListener('pagehide', () => {
    if (inRoom) hub.send({ type: 'room.leave' });
  });

  // --- start ------------------------------------------------------------
  hub.start();
  show('loading', 'Starting your camera and microphone…');
  prejoin.hidden = false;
  await startPreview();
  show('prejoin', 'Check your camera and microphone, then join.');
  // The server's clock (from the hub's `hello`) decides; this is only a hint.
  if (serverClock.now() < opensAt) {
    show('prejoin', `Check your camera and microphone. The room opens at ${fmt.dateTime(opensAt)} (${fmt.zone}).`);
  }
}


/**
 * Shows the room's state: a line of text (a live region) and, for final
 * states, the way back.
 * @param {RoomState} state
 * @param {...(Node | string)} parts
 */
function show(state, ...parts) {
  const changed = consulta.state !== state || stateBox.textContent !== parts.map((p) => (typeof p === 'string' ? p : p.textContent)).join('');
  consulta.state = state;
  document.body.dataset.roomState = state;
  if (changed) replace(stateBox, ...parts);
  const final = ['lost', 'left', 'cancelled', 'ended', 'replaced', 'refused'].includes(state);
  stateBox.classList.toggle('is-error', ['lost', 'cancelled', 'refused'].includes(state));
  stateBox.setAttribute('role', final ? 'alert' : 'status');
  actionsBox.hidden = !final;
  if (!final) retryButton.hidden = true;
  if (final) {
    prejoin.hidden = true;
    if (state !== 'lost') call.hidden = true;
  }
}
