//! The job machine drawn as the Step Functions console draws it: states in layers from
//! `StartAt` down, a Parallel state as a box holding its branches side by side, and the path
//! an execution took read from its history.
//!
//! The layout is a plain layered one: back edges (loops) are found by a depth-first walk and
//! left out of the layering, every other edge goes down at least one layer (longest path),
//! edges that skip layers pass through bend points so they go around the states in between,
//! and states in a layer are ordered by the positions of their neighbours.

use std::collections::{BTreeMap, HashMap, HashSet};

use runway_asl::HistoryEvent;
use serde::Serialize;
use serde_json::{Map, Value};

const NODE_HEIGHT: f64 = 34.0;
const NODE_MIN_WIDTH: f64 = 110.0;
/// Roughly the width of one character of the 13px labels.
const CHAR_WIDTH: f64 = 7.4;
const NODE_PADDING: f64 = 26.0;
const GAP_X: f64 = 28.0;
const GAP_Y: f64 = 46.0;
/// The width a bend point of a long edge takes in its layer.
const BEND_WIDTH: f64 = 8.0;
const MARGIN: f64 = 16.0;
/// The title band of a Parallel box.
const PARALLEL_HEADER: f64 = 30.0;
const PARALLEL_PADDING: f64 = 14.0;
/// How far right of the states a back edge runs, and between two back edges.
const BACK_EDGE_GAP: f64 = 18.0;
const BACK_EDGE_STEP: f64 = 10.0;
/// Ordering sweeps; a few settle a graph of this size.
const SWEEPS: usize = 6;

/// Why a definition cannot be drawn.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("the state machine definition is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the state machine definition has no {0}")]
    Missing(String),
    #[error("state {from} goes to {to}, which is not a state of its scope")]
    UnknownTarget { from: String, to: String },
}

/// How one state leads to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EdgeKind {
    Next,
    Choice,
    Default,
    Catch,
}

/// A state, placed. `parent` is the Parallel state whose branch holds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Node {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub parent: Option<String>,
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

/// A transition, drawn as a polyline through `points`. `back` edges go up (loops).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub kind: EdgeKind,
    pub back: bool,
    pub points: Vec<[f64; 2]>,
}

/// A state machine laid out for drawing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Graph {
    pub width: f64,
    pub height: f64,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

impl Graph {
    /// Lays out the definition `text` (Amazon States Language JSON).
    pub fn of_definition(text: &str) -> Result<Graph, GraphError> {
        let definition: Value = serde_json::from_str(text)?;
        let block = layout_scope(&definition, None)?;
        Ok(Graph {
            width: block.width + 2.0 * MARGIN,
            height: block.height + 2.0 * MARGIN,
            nodes: block
                .nodes
                .into_iter()
                .map(|node| node.shifted(MARGIN, MARGIN))
                .collect(),
            edges: block
                .edges
                .into_iter()
                .map(|edge| edge.shifted(MARGIN, MARGIN))
                .collect(),
        })
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|node| node.name == name)
    }
}

impl Node {
    fn shifted(mut self, dx: f64, dy: f64) -> Node {
        self.x += dx;
        self.y += dy;
        self
    }
}

impl Edge {
    fn shifted(mut self, dx: f64, dy: f64) -> Edge {
        for point in &mut self.points {
            point[0] += dx;
            point[1] += dy;
        }
        self
    }
}

/// The transitions of one `States` object in definition order, one per pair of states (a
/// state that reaches another both by `Next` and by a `Catch` is drawn once, as `Next`).
pub fn transitions(states: &Map<String, Value>) -> Vec<(String, String, EdgeKind)> {
    let mut out: Vec<(String, String, EdgeKind)> = Vec::new();
    let mut seen = HashSet::new();
    let mut push = |from: &str, to: Option<&str>, kind| {
        if let Some(to) = to
            && seen.insert((from.to_owned(), to.to_owned()))
        {
            out.push((from.to_owned(), to.to_owned(), kind));
        }
    };
    for (name, state) in states {
        push(name, state["Next"].as_str(), EdgeKind::Next);
        for choice in state["Choices"].as_array().into_iter().flatten() {
            push(name, choice["Next"].as_str(), EdgeKind::Choice);
        }
        push(name, state["Default"].as_str(), EdgeKind::Default);
        for catcher in state["Catch"].as_array().into_iter().flatten() {
            push(name, catcher["Next"].as_str(), EdgeKind::Catch);
        }
    }
    out
}

/// A laid-out scope in its own coordinates (origin top left).
struct Block {
    width: f64,
    height: f64,
    nodes: Vec<Node>,
    edges: Vec<Edge>,
}

/// One slot of a layer: a state, or a bend point of a long edge.
#[derive(Debug, Clone)]
struct Slot {
    /// Index into the scope's states; `None` for a bend point.
    state: Option<usize>,
    width: f64,
    height: f64,
    x: f64,
    /// Slots of the layer above this one is joined to.
    up: Vec<usize>,
}

/// Lays out the states of `scope` (a definition or a Parallel branch); `parent` is the
/// Parallel state holding it.
fn layout_scope(scope: &Value, parent: Option<&str>) -> Result<Block, GraphError> {
    let states = scope["States"]
        .as_object()
        .ok_or_else(|| GraphError::Missing("States".to_owned()))?;
    let start = scope["StartAt"]
        .as_str()
        .ok_or_else(|| GraphError::Missing("StartAt".to_owned()))?;
    let names: Vec<&String> = states.keys().collect();
    let index: HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, name)| (name.as_str(), i))
        .collect();
    let start = *index
        .get(start)
        .ok_or_else(|| GraphError::Missing(format!("state {start} (its StartAt)")))?;

    let mut edges = Vec::new();
    for (from, to, kind) in transitions(states) {
        let target = *index
            .get(to.as_str())
            .ok_or_else(|| GraphError::UnknownTarget {
                from: from.clone(),
                to: to.clone(),
            })?;
        edges.push((index[from.as_str()], target, kind));
    }

    // Each state's box; a Parallel holds its branches laid out side by side.
    let mut boxes = Vec::new();
    for (name, state) in states {
        let kind = state["Type"].as_str().unwrap_or("Task");
        let mut inner = Vec::new();
        let (width, height) = if kind == "Parallel" {
            let mut x = PARALLEL_PADDING;
            let mut tallest: f64 = 0.0;
            for branch in state["Branches"].as_array().into_iter().flatten() {
                let block = layout_scope(branch, Some(name))?;
                inner.push((x, block.nodes, block.edges));
                x += block.width + GAP_X;
                tallest = tallest.max(block.height);
            }
            let label = label_width(name) + 2.0 * PARALLEL_PADDING;
            (
                (x - GAP_X + PARALLEL_PADDING).max(label),
                PARALLEL_HEADER + tallest + PARALLEL_PADDING,
            )
        } else {
            (label_width(name), NODE_HEIGHT)
        };
        boxes.push((kind.to_owned(), width, height, inner));
    }

    let (order, back) = depth_first(names.len(), start, &edges);
    let mut layer_of = vec![0usize; names.len()];
    // Longest path over the forward edges, in topological order (reverse post-order).
    for &from in &order {
        for (i, &(source, target, _)) in edges.iter().enumerate() {
            if source == from && !back[i] {
                layer_of[target] = layer_of[target].max(layer_of[from] + 1);
            }
        }
    }
    let depth = layer_of.iter().max().map_or(1, |deepest| deepest + 1);
    let mut layers: Vec<Vec<Slot>> = vec![Vec::new(); depth];
    let mut slot_of = vec![(0usize, 0usize); names.len()];
    // States enter their layer in walk order, a first guess the sweeps improve on.
    for &state in &order {
        let layer = layer_of[state];
        slot_of[state] = (layer, layers[layer].len());
        layers[layer].push(Slot {
            state: Some(state),
            width: boxes[state].1,
            height: boxes[state].2,
            x: 0.0,
            up: Vec::new(),
        });
    }
    // A forward edge joins consecutive layers through bend points; `routes` keeps the
    // slots each edge passes through, top to bottom.
    let mut routes: Vec<Vec<(usize, usize)>> = Vec::new();
    for (i, &(source, target, _)) in edges.iter().enumerate() {
        if back[i] {
            routes.push(Vec::new());
            continue;
        }
        let mut route = vec![slot_of[source]];
        let between = layer_of[source] + 1..layer_of[target];
        for (layer, slots) in layers
            .iter_mut()
            .enumerate()
            .take(between.end)
            .skip(between.start)
        {
            let above = route[route.len() - 1].1;
            slots.push(Slot {
                state: None,
                width: BEND_WIDTH,
                height: 0.0,
                x: 0.0,
                up: vec![above],
            });
            route.push((layer, slots.len() - 1));
        }
        let (layer, slot) = slot_of[target];
        layers[layer][slot].up.push(route[route.len() - 1].1);
        route.push(slot_of[target]);
        routes.push(route);
    }

    let permutation = order_layers(&mut layers);
    let routes: Vec<Vec<(usize, usize)>> = routes
        .into_iter()
        .map(|route| {
            route
                .into_iter()
                .map(|(layer, slot)| (layer, permutation[layer][slot]))
                .collect()
        })
        .collect();
    place(&mut layers);

    // Layers stack down; each is as tall as its tallest state.
    let mut tops = Vec::with_capacity(depth);
    let mut y = 0.0;
    for layer in &layers {
        tops.push(y);
        let tallest = layer.iter().map(|slot| slot.height).fold(0.0, f64::max);
        y += tallest.max(NODE_HEIGHT) + GAP_Y;
    }
    let height = y - GAP_Y;
    let bottoms: Vec<f64> = layers
        .iter()
        .zip(&tops)
        .map(|(layer, top)| top + layer.iter().map(|s| s.height).fold(NODE_HEIGHT, f64::max))
        .collect();

    let mut nodes = Vec::new();
    let mut placed: Vec<(f64, f64, f64, f64)> = vec![(0.0, 0.0, 0.0, 0.0); names.len()];
    for (layer, slots) in layers.iter().enumerate() {
        for slot in slots {
            let Some(state) = slot.state else { continue };
            let (kind, width, height, _) = &boxes[state];
            let (x, y) = (slot.x, tops[layer]);
            placed[state] = (x, y, *width, *height);
            nodes.push(Node {
                name: names[state].clone(),
                kind: kind.clone(),
                parent: parent.map(str::to_owned),
                x,
                y,
                width: *width,
                height: *height,
            });
        }
    }
    let mut drawn = Vec::new();
    // Parallel boxes' contents, moved into place after their box.
    let mut contents = Vec::new();
    for (state, (_, _, _, inner)) in boxes.into_iter().enumerate() {
        let (x, y, _, _) = placed[state];
        for (offset, branch_nodes, branch_edges) in inner {
            let (dx, dy) = (x + offset, y + PARALLEL_HEADER);
            contents.extend(branch_nodes.into_iter().map(|n| n.shifted(dx, dy)));
            drawn.extend(branch_edges.into_iter().map(|e| e.shifted(dx, dy)));
        }
    }
    nodes.extend(contents);

    let width = layers
        .iter()
        .flatten()
        .map(|slot| slot.x + slot.width)
        .fold(0.0, f64::max);
    let mut back_lane = width + BACK_EDGE_GAP;
    for (i, &(source, target, kind)) in edges.iter().enumerate() {
        let (sx, sy, sw, sh) = placed[source];
        let (tx, ty, tw, _) = placed[target];
        let points = if back[i] {
            // Down out of the source, right along the gap below its layer, up beside every
            // state, and left along the gap above the target into its top: the lines run
            // between layers, never through a state.
            let lane = back_lane;
            back_lane += BACK_EDGE_STEP;
            let below = bottoms[layer_of[source]] + GAP_Y / 3.0;
            let above = tops[layer_of[target]] - GAP_Y / 3.0;
            let (out_x, in_x) = (sx + sw * 0.7, tx + tw * 0.7);
            vec![
                [out_x, sy + sh],
                [out_x, below],
                [lane, below],
                [lane, above],
                [in_x, above],
                [in_x, ty],
            ]
        } else {
            let route = &routes[i];
            let mut points = vec![[sx + sw / 2.0, sy + sh]];
            for &(layer, slot) in &route[1..route.len() - 1] {
                let centre = layers[layer][slot].x + BEND_WIDTH / 2.0;
                points.push([centre, tops[layer]]);
                points.push([centre, bottoms[layer]]);
            }
            points.push([tx + tw / 2.0, ty]);
            points
        };
        drawn.push(Edge {
            from: names[source].clone(),
            to: names[target].clone(),
            kind,
            back: back[i],
            points,
        });
    }
    Ok(Block {
        width: if back.iter().any(|b| *b) {
            back_lane
        } else {
            width
        },
        height,
        nodes,
        edges: drawn,
    })
}

fn label_width(name: &str) -> f64 {
    (name.chars().count() as f64 * CHAR_WIDTH + NODE_PADDING).max(NODE_MIN_WIDTH)
}

/// A depth-first walk from `start` (then from any state it does not reach): the states in
/// topological order of the forward edges, and which edges are back edges.
fn depth_first(
    count: usize,
    start: usize,
    edges: &[(usize, usize, EdgeKind)],
) -> (Vec<usize>, Vec<bool>) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut marks = vec![Mark::New; count];
    let mut back = vec![false; edges.len()];
    let mut post = Vec::with_capacity(count);
    let roots = std::iter::once(start).chain(0..count);
    for root in roots {
        if marks[root] != Mark::New {
            continue;
        }
        // (state, next edge index to look at): an explicit stack, no recursion limit.
        let mut stack = vec![(root, 0usize)];
        marks[root] = Mark::Open;
        while let Some(&mut (state, ref mut next)) = stack.last_mut() {
            let found = edges[*next..]
                .iter()
                .position(|&(source, _, _)| source == state)
                .map(|offset| *next + offset);
            match found {
                Some(edge) => {
                    *next = edge + 1;
                    let target = edges[edge].1;
                    match marks[target] {
                        Mark::New => {
                            marks[target] = Mark::Open;
                            stack.push((target, 0));
                        }
                        Mark::Open => back[edge] = true,
                        Mark::Done => {}
                    }
                }
                None => {
                    marks[state] = Mark::Done;
                    post.push(state);
                    stack.pop();
                }
            }
        }
    }
    post.reverse();
    (post, back)
}

/// Orders each layer by the mean position of its slots' neighbours, sweeping down and up.
/// Returns, per layer, where each original slot index ended up.
fn order_layers(layers: &mut [Vec<Slot>]) -> Vec<Vec<usize>> {
    // `down[layer][slot]`: the slots of the next layer joined to it.
    let mut permutation: Vec<Vec<usize>> = layers.iter().map(|l| (0..l.len()).collect()).collect();
    for sweep in 0..SWEEPS {
        let downward = sweep % 2 == 0;
        let range: Vec<usize> = if downward {
            (1..layers.len()).collect()
        } else {
            (0..layers.len().saturating_sub(1)).rev().collect()
        };
        for layer in range {
            let keys: Vec<f64> = (0..layers[layer].len())
                .map(|slot| {
                    let neighbours: Vec<usize> = if downward {
                        layers[layer][slot].up.clone()
                    } else {
                        layers[layer + 1]
                            .iter()
                            .enumerate()
                            .filter(|(_, below)| below.up.contains(&slot))
                            .map(|(i, _)| i)
                            .collect()
                    };
                    if neighbours.is_empty() {
                        slot as f64
                    } else {
                        neighbours.iter().map(|&n| n as f64).sum::<f64>() / neighbours.len() as f64
                    }
                })
                .collect();
            let mut sorted: Vec<usize> = (0..layers[layer].len()).collect();
            // A stable sort keeps ties in their current order.
            sorted.sort_by(|a, b| keys[*a].total_cmp(&keys[*b]));
            reorder(layers, layer, &sorted, &mut permutation);
        }
    }
    permutation
}

/// Puts layer `layer` in the order `sorted` (old indices), renumbering the links to it.
fn reorder(
    layers: &mut [Vec<Slot>],
    layer: usize,
    sorted: &[usize],
    permutation: &mut [Vec<usize>],
) {
    let mut new_index = vec![0; sorted.len()];
    for (new, &old) in sorted.iter().enumerate() {
        new_index[old] = new;
    }
    let old = std::mem::take(&mut layers[layer]);
    layers[layer] = sorted.iter().map(|&i| old[i].clone()).collect();
    if let Some(below) = layers.get_mut(layer + 1) {
        for slot in below {
            for up in &mut slot.up {
                *up = new_index[*up];
            }
        }
    }
    for slot in &mut permutation[layer] {
        *slot = new_index[*slot];
    }
}

/// Gives every slot its x: each as close as it can get to the mean centre of its neighbours
/// (above on the way down, below on the way up), in layer order and never overlapping.
fn place(layers: &mut [Vec<Slot>]) {
    for slots in layers.iter_mut() {
        let mut x = 0.0;
        for slot in slots.iter_mut() {
            slot.x = x;
            x += slot.width + GAP_X;
        }
    }
    for _ in 0..SWEEPS {
        for layer in 1..layers.len() {
            let (above, rest) = layers.split_at_mut(layer);
            let above = &above[layer - 1];
            let wanted: Vec<f64> = rest[0]
                .iter()
                .map(|slot| mean_centre(&slot.up, above).map_or(slot.x, |c| c - slot.width / 2.0))
                .collect();
            pack(&mut rest[0], &wanted);
        }
        for layer in (0..layers.len().saturating_sub(1)).rev() {
            let (upper, lower) = layers.split_at_mut(layer + 1);
            let below = &lower[0];
            let slots = &mut upper[layer];
            let wanted: Vec<f64> = (0..slots.len())
                .map(|i| {
                    let down: Vec<usize> = below
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| s.up.contains(&i))
                        .map(|(j, _)| j)
                        .collect();
                    mean_centre(&down, below).map_or(slots[i].x, |c| c - slots[i].width / 2.0)
                })
                .collect();
            pack(slots, &wanted);
        }
    }
    // Nothing left of the origin.
    let left = layers
        .iter()
        .flatten()
        .map(|slot| slot.x)
        .fold(f64::INFINITY, f64::min);
    if left.is_finite() {
        for slot in layers.iter_mut().flatten() {
            slot.x -= left;
        }
    }
}

fn mean_centre(of: &[usize], layer: &[Slot]) -> Option<f64> {
    if of.is_empty() {
        return None;
    }
    let sum: f64 = of.iter().map(|&i| layer[i].x + layer[i].width / 2.0).sum();
    Some(sum / of.len() as f64)
}

/// Places `slots` in order as near their `wanted` left edges as they can be without
/// overlapping: slots that would collide move as one block, to the mean of their wishes.
fn pack(slots: &mut [Slot], wanted: &[f64]) {
    // (first slot, last slot, left edge): each block's slots sit GAP_X apart.
    let mut blocks: Vec<(usize, usize, f64)> = Vec::new();
    let offset = |slots: &[Slot], first: usize, i: usize| -> f64 {
        slots[first..i].iter().map(|s| s.width + GAP_X).sum()
    };
    for i in 0..slots.len() {
        blocks.push((i, i, wanted[i]));
        while blocks.len() > 1 {
            let (_, _, left) = blocks[blocks.len() - 1];
            let (p_first, p_last, p_left) = blocks[blocks.len() - 2];
            let p_right = p_left + offset(slots, p_first, p_last) + slots[p_last].width;
            if p_right + GAP_X <= left {
                break;
            }
            blocks.pop();
            blocks.pop();
            let merged_left = (p_first..=i)
                .map(|j| wanted[j] - offset(slots, p_first, j))
                .sum::<f64>()
                / (i - p_first + 1) as f64;
            blocks.push((p_first, i, merged_left));
        }
    }
    for (first, last, left) in blocks {
        for i in first..=last {
            slots[i].x = left + offset(slots, first, i);
        }
    }
}

/// Where an execution is in a state: passed through it, in it now, or stopped in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mark {
    Visited,
    Current,
    Stopped,
}

/// One entry into a state, with what it was given and what it passed on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Visit {
    pub entered_event: u64,
    pub entered_at: String,
    pub input: Option<String>,
    pub exited_at: Option<String>,
    pub output: Option<String>,
}

/// The states an execution entered, how it stands in each, and the transitions it took.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Path {
    pub states: BTreeMap<String, StatePath>,
    /// `(from, to)` pairs, in the order first taken.
    pub taken: Vec<(String, String)>,
    /// States entered and not yet left by a running execution.
    pub current: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatePath {
    pub mark: Mark,
    pub visits: Vec<Visit>,
}

impl Path {
    /// Reads the path from a history; `running` tells whether a state not yet left is where
    /// the execution is now or where it stopped.
    pub fn of_history(history: &[HistoryEvent], running: bool) -> Path {
        let by_id: HashMap<u64, &HistoryEvent> = history.iter().map(|e| (e.id, e)).collect();
        let mut states: BTreeMap<String, StatePath> = BTreeMap::new();
        let mut taken: Vec<(String, String)> = Vec::new();
        let mut order: Vec<String> = Vec::new();
        for event in history {
            let Some(name) = state_name(event) else {
                continue;
            };
            let detail = event.detail();
            let text = |key: &str| {
                detail
                    .and_then(|d| d.get(key))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            let at = event.timestamp.to_rfc3339();
            if event.event_type.ends_with("StateEntered") {
                let entry = states.entry(name.to_owned()).or_insert_with(|| StatePath {
                    mark: Mark::Visited,
                    visits: Vec::new(),
                });
                entry.visits.push(Visit {
                    entered_event: event.id,
                    entered_at: at,
                    input: text("input"),
                    exited_at: None,
                    output: None,
                });
                order.push(name.to_owned());
                // The lane's previous events lead back to the state this one came from.
                if let Some(from) = came_from(&by_id, event)
                    && !taken.iter().any(|(f, t)| f == from && t == name)
                {
                    taken.push((from.to_owned(), name.to_owned()));
                }
            } else if let Some(visit) = states.get_mut(name).and_then(|s| {
                s.visits
                    .iter_mut()
                    .rev()
                    .find(|visit| visit.exited_at.is_none())
            }) {
                visit.exited_at = Some(at);
                visit.output = text("output");
            }
        }
        let mut current = Vec::new();
        for name in &order {
            let Some(state) = states.get_mut(name) else {
                continue;
            };
            if state.visits.iter().any(|visit| visit.exited_at.is_none()) {
                state.mark = if running {
                    Mark::Current
                } else {
                    Mark::Stopped
                };
                if running && !current.contains(name) {
                    current.push(name.clone());
                }
            }
        }
        Path {
            states,
            taken,
            current,
        }
    }
}

/// The state a `…StateEntered` or `…StateExited` event is about.
fn state_name(event: &HistoryEvent) -> Option<&str> {
    if !(event.event_type.ends_with("StateEntered") || event.event_type.ends_with("StateExited")) {
        return None;
    }
    event.detail()?.get("name")?.as_str()
}

/// The state whose exit led to `entered`: the first `…StateExited` back along its lane. A
/// branch's first state, or the machine's, reaches a `…StateEntered` or the start first.
fn came_from<'a>(
    by_id: &HashMap<u64, &'a HistoryEvent>,
    entered: &HistoryEvent,
) -> Option<&'a str> {
    let mut previous = entered.previous_event_id;
    // Bounded by the history's length: ids only go back.
    for _ in 0..by_id.len() {
        let event = by_id.get(&previous)?;
        if event.event_type.ends_with("StateExited") {
            return state_name(event);
        }
        if event.event_type.ends_with("StateEntered") || previous == 0 {
            return None;
        }
        previous = event.previous_event_id;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::JOB_STATE_MACHINE;

    /// Every state of every scope, with its scope's transitions, read straight from the JSON.
    fn asl_states_and_edges(scope: &Value, out: &mut (Vec<String>, Vec<(String, String)>)) {
        let states = scope["States"].as_object().unwrap();
        for (name, state) in states {
            out.0.push(name.clone());
            let mut targets: Vec<&str> = Vec::new();
            targets.extend(state["Next"].as_str());
            targets.extend(state["Default"].as_str());
            for key in ["Choices", "Catch"] {
                for item in state[key].as_array().into_iter().flatten() {
                    targets.extend(item["Next"].as_str());
                }
            }
            for target in targets {
                let edge = (name.clone(), target.to_owned());
                if !out.1.contains(&edge) {
                    out.1.push(edge);
                }
            }
            for branch in state["Branches"].as_array().into_iter().flatten() {
                asl_states_and_edges(branch, out);
            }
        }
    }

    fn job_graph() -> Graph {
        Graph::of_definition(JOB_STATE_MACHINE).unwrap()
    }

    #[test]
    fn every_state_of_the_job_machine_is_drawn_once_with_its_type() {
        let graph = job_graph();
        let definition: Value = serde_json::from_str(JOB_STATE_MACHINE).unwrap();
        let mut asl = (Vec::new(), Vec::new());
        asl_states_and_edges(&definition, &mut asl);
        assert!(asl.0.len() > 25, "{:?}", asl.0);
        let mut drawn: Vec<&str> = graph.nodes.iter().map(|n| n.name.as_str()).collect();
        drawn.sort_unstable();
        let mut expected: Vec<&str> = asl.0.iter().map(String::as_str).collect();
        expected.sort_unstable();
        assert_eq!(drawn, expected);
        assert_eq!(graph.node("IsItOurs").unwrap().kind, "Choice");
        assert_eq!(graph.node("AwaitRunnerBusy").unwrap().kind, "Task");
        assert_eq!(graph.node("Route").unwrap().parent, None);
    }

    /// A machine with a Parallel state: its branches' states are drawn inside its box.
    const PARALLEL_MACHINE: &str = r#"{
        "StartAt": "Launch",
        "States": {
            "Launch": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:f", "Next": "Follow"},
            "Follow": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "AwaitJob", "States": {
                        "AwaitJob": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:f", "Next": "JobDone"},
                        "JobDone": {"Type": "Pass", "End": true}}},
                    {"StartAt": "AwaitRunner", "States": {
                        "AwaitRunner": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:f", "End": true}}}
                ],
                "Next": "Done"
            },
            "Done": {"Type": "Succeed"}
        }
    }"#;

    #[test]
    fn branch_states_are_drawn_inside_their_parallel_box() {
        let graph = Graph::of_definition(PARALLEL_MACHINE).unwrap();
        let node = |name: &str| graph.node(name).unwrap();
        assert_eq!(node("Follow").kind, "Parallel");
        assert_eq!(node("AwaitRunner").parent.as_deref(), Some("Follow"));
        let follow = node("Follow");
        for child in graph.nodes.iter().filter(|n| n.parent.is_some()) {
            assert!(child.x >= follow.x && child.x + child.width <= follow.x + follow.width);
            assert!(child.y >= follow.y && child.y + child.height <= follow.y + follow.height);
        }
        assert!(node("Done").y > follow.y + follow.height);
    }

    #[test]
    fn the_edges_are_the_transitions_of_the_definition() {
        let graph = job_graph();
        let definition: Value = serde_json::from_str(JOB_STATE_MACHINE).unwrap();
        let mut asl = (Vec::new(), Vec::new());
        asl_states_and_edges(&definition, &mut asl);
        let mut drawn: Vec<(String, String)> = graph
            .edges
            .iter()
            .map(|e| (e.from.clone(), e.to.clone()))
            .collect();
        drawn.sort();
        let mut expected = asl.1.clone();
        expected.sort();
        assert_eq!(drawn, expected);
        let kind = |from: &str, to: &str| {
            graph
                .edges
                .iter()
                .find(|e| e.from == from && e.to == to)
                .map(|e| (e.kind, e.back))
                .unwrap()
        };
        assert_eq!(kind("Route", "IsItOurs"), (EdgeKind::Next, false));
        assert_eq!(kind("IsItOurs", "NotOurs"), (EdgeKind::Choice, false));
        assert_eq!(kind("IsItOurs", "Admit"), (EdgeKind::Default, false));
        assert_eq!(
            kind("Route", "ReleaseAfterFailure"),
            (EdgeKind::Catch, false)
        );
        // The queue loop goes back up.
        assert_eq!(kind("WaitForSlot", "Admit"), (EdgeKind::Next, true));
    }

    #[test]
    fn states_go_down_the_page_and_nothing_overlaps() {
        let graph = job_graph();
        let node = |name: &str| graph.node(name).unwrap();
        // Forward transitions go down, loops aside.
        for edge in graph.edges.iter().filter(|e| !e.back) {
            assert!(
                node(&edge.to).y > node(&edge.from).y,
                "{} → {}",
                edge.from,
                edge.to
            );
        }
        // No two states of one scope overlap.
        for a in &graph.nodes {
            for b in &graph.nodes {
                if a.name < b.name && a.parent == b.parent {
                    let apart = a.x + a.width <= b.x
                        || b.x + b.width <= a.x
                        || a.y + a.height <= b.y
                        || b.y + b.height <= a.y;
                    assert!(apart, "{} and {} overlap", a.name, b.name);
                }
            }
        }
        for n in &graph.nodes {
            assert!(n.x + n.width <= graph.width && n.y + n.height <= graph.height);
        }
    }

    fn event(id: u64, previous: u64, kind: &str, details: Value) -> HistoryEvent {
        let mut map = Map::new();
        if let Some(key) = runway_asl::history::details_key(kind) {
            map.insert(key.to_owned(), details);
        }
        HistoryEvent {
            timestamp: chrono::Utc::now(),
            event_type: kind.to_owned(),
            id,
            previous_event_id: previous,
            details: map,
        }
    }

    #[test]
    fn the_path_follows_each_lane_back_to_the_state_it_came_from() {
        let name = |n: &str| serde_json::json!({"name": n, "input": "{}", "output": "{\"x\":1}"});
        let history = vec![
            event(1, 0, "ExecutionStarted", serde_json::json!({})),
            event(2, 1, "TaskStateEntered", name("Provision")),
            event(3, 2, "TaskScheduled", serde_json::json!({})),
            event(4, 3, "TaskStateExited", name("Provision")),
            event(5, 4, "ParallelStateEntered", name("Follow")),
            event(6, 5, "ParallelStateStarted", serde_json::json!({})),
            // Two lanes interleave; each first state came from no state of its branch.
            event(7, 6, "TaskStateEntered", name("AwaitJobStart")),
            event(8, 6, "TaskStateEntered", name("AwaitRunnerBusy")),
            event(9, 7, "TaskStateExited", name("AwaitJobStart")),
            event(10, 8, "TaskStateExited", name("AwaitRunnerBusy")),
            event(11, 9, "ChoiceStateEntered", name("JobStartedOrEnded")),
            event(12, 10, "TaskStateEntered", name("AwaitRunnerGone")),
        ];
        let path = Path::of_history(&history, true);
        assert_eq!(
            path.taken,
            vec![
                ("Provision".to_owned(), "Follow".to_owned()),
                ("AwaitJobStart".to_owned(), "JobStartedOrEnded".to_owned()),
                ("AwaitRunnerBusy".to_owned(), "AwaitRunnerGone".to_owned()),
            ]
        );
        assert_eq!(
            path.current,
            ["Follow", "JobStartedOrEnded", "AwaitRunnerGone"]
        );
        assert_eq!(path.states["Provision"].mark, Mark::Visited);
        assert_eq!(
            path.states["Provision"].visits[0].output.as_deref(),
            Some("{\"x\":1}")
        );
        let stopped = Path::of_history(&history, false);
        assert!(stopped.current.is_empty());
        assert_eq!(stopped.states["AwaitRunnerGone"].mark, Mark::Stopped);
    }
}
