//! The dashboard grid: react-grid-layout's behaviour on a column grid. A widget moved or
//! resized onto others pushes them down, out of the way; then everything floats up as far as
//! it can (vertical compaction), so the grid never has holes above a widget. Pure, so it is
//! tested natively.

use telemetry::dashboard::{Breakpoint, Placement, WIDE_COLS};

fn collides(a: &Placement, b: &Placement) -> bool {
    a.widget != b.widget && a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h
}

/// Floats every widget up as far as it goes, top to bottom, keeping the input order.
pub fn compact(items: &mut [Placement]) {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| (items[i].y, items[i].x));
    let mut placed: Vec<Placement> = Vec::with_capacity(items.len());
    for i in order {
        let mut item = items[i].clone();
        while item.y > 0 {
            item.y -= 1;
            if placed.iter().any(|p| collides(p, &item)) {
                item.y += 1;
                break;
            }
        }
        while placed.iter().any(|p| collides(p, &item)) {
            item.y += 1;
        }
        items[i].y = item.y;
        placed.push(item);
    }
}

/// Pushes everything overlapping `items[moved]` down below it, cascading.
fn push_down(items: &mut [Placement], moved: usize) {
    let mut queue = vec![moved];
    while let Some(m) = queue.pop() {
        let anchor = items[m].clone();
        let mut hit: Vec<usize> =
            (0..items.len()).filter(|&i| i != m && collides(&items[i], &anchor)).collect();
        hit.sort_by_key(|&i| items[i].y);
        for i in hit {
            items[i].y = anchor.y + anchor.h;
            queue.push(i);
        }
    }
}

fn index(items: &[Placement], id: &str) -> Option<usize> {
    items.iter().position(|p| p.widget == id)
}

/// Moves a widget to (x, y), clamped to the grid; others make way, then all compact. As in
/// react-grid-layout, the widget dropped onto first tries to hop above the moved one when there
/// is room there (so dragging a widget down over its neighbour swaps them); the rest are pushed
/// down.
pub fn move_to(items: &mut [Placement], id: &str, x: i64, y: i64, cols: u32) {
    let Some(i) = index(items, id) else { return };
    let max_x = i64::from(cols.saturating_sub(items[i].w));
    items[i].x = x.clamp(0, max_x) as u32;
    items[i].y = y.max(0) as u32;
    let first =
        (0..items.len()).filter(|&j| j != i && collides(&items[j], &items[i])).min_by_key(|&j| items[j].y);
    if let Some(c) = first
        && items[i].y >= items[c].h
    {
        let above = Placement { y: items[i].y - items[c].h, ..items[c].clone() };
        if !items.iter().enumerate().any(|(j, o)| j != c && collides(o, &above)) {
            items[c].y = above.y;
        }
    }
    push_down(items, i);
    compact(items);
}

/// Resizes a widget to (w, h) cells, clamped to the grid; others make way, then all compact.
pub fn resize(items: &mut [Placement], id: &str, w: i64, h: i64, cols: u32) {
    let Some(i) = index(items, id) else { return };
    items[i].w = w.clamp(1, i64::from(cols - items[i].x.min(cols - 1))) as u32;
    items[i].h = h.clamp(1, 40) as u32;
    push_down(items, i);
    compact(items);
}

/// Adds a widget of (w, h) in the first free spot, reading top to bottom, left to right (at
/// the bottom when nothing above is free).
pub fn add(items: &mut Vec<Placement>, id: &str, w: u32, h: u32, cols: u32) {
    let w = w.clamp(1, cols);
    let bottom = items.iter().map(|p| p.y + p.h).max().unwrap_or(0);
    let mut spot = Placement { widget: id.to_owned(), x: 0, y: bottom, w, h: h.max(1) };
    'search: for y in 0..=bottom {
        for x in 0..=cols - w {
            let candidate = Placement { x, y, ..spot.clone() };
            if !items.iter().any(|p| collides(p, &candidate)) {
                spot = candidate;
                break 'search;
            }
        }
    }
    items.push(spot);
    compact(items);
}

/// Removes a widget and closes the gap.
pub fn remove(items: &mut Vec<Placement>, id: &str) {
    items.retain(|p| p.widget != id);
    compact(items);
}

/// Moves a widget one place up (`-1`) or down (`1`) in a one-column stack.
pub fn reorder(items: &mut [Placement], id: &str, delta: i32) {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| (items[i].y, items[i].x));
    let Some(pos) = order.iter().position(|&i| items[i].widget == id) else { return };
    let target = pos as i64 + i64::from(delta);
    if !(0..order.len() as i64).contains(&target) {
        return;
    }
    order.swap(pos, target as usize);
    let mut y = 0;
    for i in order {
        items[i].x = 0;
        items[i].y = y;
        y += items[i].h;
    }
}

/// A layout for `bp` derived from the wide one, for a breakpoint nobody arranged yet: on a
/// phone, one column in reading order; on a medium screen, widths scaled to its columns.
pub fn derive(wide: &[Placement], bp: Breakpoint) -> Vec<Placement> {
    let cols = bp.cols();
    let mut order: Vec<&Placement> = wide.iter().collect();
    order.sort_by_key(|p| (p.y, p.x));
    let mut out: Vec<Placement> = Vec::with_capacity(order.len());
    let mut y = 0;
    for p in order {
        let w = ((p.w * cols).div_ceil(WIDE_COLS)).clamp(1, cols);
        let x = (p.x * cols / WIDE_COLS).min(cols - w);
        let placed = Placement { widget: p.widget.clone(), x, y: if cols == 1 { y } else { p.y }, w, h: p.h };
        y += p.h;
        out.push(placed);
        let last = out.len() - 1;
        push_down(&mut out, last);
    }
    compact(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(id: &str, x: u32, y: u32, w: u32, h: u32) -> Placement {
        Placement { widget: id.into(), x, y, w, h }
    }

    fn at(items: &[Placement], id: &str) -> (u32, u32, u32, u32) {
        let q = &items[index(items, id).unwrap()];
        (q.x, q.y, q.w, q.h)
    }

    fn no_overlap(items: &[Placement], cols: u32) {
        for a in items {
            assert!(a.x + a.w <= cols, "{a:?} outside {cols} columns");
            for b in items {
                assert!(!collides(a, b), "{a:?} overlaps {b:?}");
            }
        }
    }

    #[test]
    fn compaction_closes_gaps_above() {
        let mut g = vec![p("a", 0, 5, 4, 2), p("b", 0, 9, 4, 2), p("c", 4, 3, 4, 2)];
        compact(&mut g);
        assert_eq!(at(&g, "a"), (0, 0, 4, 2));
        assert_eq!(at(&g, "b"), (0, 2, 4, 2));
        assert_eq!(at(&g, "c"), (4, 0, 4, 2));
    }

    #[test]
    fn moving_onto_a_widget_pushes_it_down() {
        let mut g = vec![p("a", 0, 0, 6, 2), p("b", 6, 0, 6, 2), p("c", 6, 2, 6, 2)];
        move_to(&mut g, "a", 6, 0, 12);
        assert_eq!(at(&g, "a"), (6, 0, 6, 2));
        assert_eq!(at(&g, "b"), (6, 2, 6, 2));
        assert_eq!(at(&g, "c"), (6, 4, 6, 2));
        no_overlap(&g, 12);
    }

    #[test]
    fn dragging_below_a_neighbour_swaps_them() {
        let mut g = vec![p("a", 0, 0, 12, 2), p("b", 0, 2, 12, 3)];
        // Onto the lower half of `b`: there is room for `b` above, so they trade places.
        move_to(&mut g, "a", 0, 3, 12);
        assert_eq!(at(&g, "b"), (0, 0, 12, 3));
        assert_eq!(at(&g, "a"), (0, 3, 12, 2));
    }

    #[test]
    fn moves_are_clamped_to_the_grid() {
        let mut g = vec![p("a", 0, 0, 4, 2)];
        move_to(&mut g, "a", 20, -3, 12);
        assert_eq!(at(&g, "a"), (8, 0, 4, 2));
    }

    #[test]
    fn resizing_pushes_neighbours_and_stays_inside() {
        let mut g = vec![p("a", 0, 0, 4, 2), p("b", 4, 0, 4, 2), p("c", 0, 2, 4, 2)];
        resize(&mut g, "a", 6, 3, 12);
        assert_eq!(at(&g, "a"), (0, 0, 6, 3));
        assert_eq!(at(&g, "b").1, 3);
        assert_eq!(at(&g, "c").1, 3);
        resize(&mut g, "a", 40, 0, 12);
        assert_eq!(at(&g, "a"), (0, 0, 12, 1));
        no_overlap(&g, 12);
    }

    #[test]
    fn added_widgets_go_where_there_is_room() {
        let mut g = vec![p("a", 0, 0, 6, 2)];
        add(&mut g, "b", 6, 2, 12);
        assert_eq!(at(&g, "b"), (6, 0, 6, 2));
        add(&mut g, "c", 4, 2, 12);
        assert_eq!(at(&g, "c"), (0, 2, 4, 2));
        remove(&mut g, "a");
        assert_eq!(at(&g, "b"), (6, 0, 6, 2));
        assert_eq!(at(&g, "c"), (0, 0, 4, 2));
        no_overlap(&g, 12);
    }

    #[test]
    fn phones_stack_in_reading_order_and_reorder() {
        let wide = vec![p("c", 0, 4, 12, 2), p("b", 6, 0, 6, 4), p("a", 0, 0, 6, 3)];
        let mut phone = derive(&wide, Breakpoint::Phone);
        let order = |g: &[Placement]| {
            let mut v: Vec<_> = g.iter().map(|q| (q.y, q.widget.clone())).collect();
            v.sort();
            v.into_iter().map(|(_, id)| id).collect::<Vec<_>>()
        };
        assert_eq!(order(&phone), ["a", "b", "c"]);
        assert!(phone.iter().all(|q| q.x == 0 && q.w == 1));
        no_overlap(&phone, 1);
        reorder(&mut phone, "c", -1);
        assert_eq!(order(&phone), ["a", "c", "b"]);
        reorder(&mut phone, "a", -1);
        assert_eq!(order(&phone), ["a", "c", "b"]);
        no_overlap(&phone, 1);
    }

    #[test]
    fn medium_screens_get_scaled_widths_without_overlaps() {
        let wide = vec![p("a", 0, 0, 4, 2), p("b", 4, 0, 4, 2), p("c", 8, 0, 4, 2), p("d", 0, 2, 12, 3)];
        let medium = derive(&wide, Breakpoint::Medium);
        no_overlap(&medium, 6);
        assert_eq!(at(&medium, "d").2, 6);
    }

    #[test]
    fn random_edits_never_overlap() {
        let mut g: Vec<Placement> = Vec::new();
        let mut seed = 7u64;
        let mut rnd = |n: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        for i in 0..20 {
            add(&mut g, &format!("w{i}"), 1 + rnd(6) as u32, 1 + rnd(4) as u32, 12);
        }
        for _ in 0..300 {
            let id = format!("w{}", rnd(20));
            if rnd(2) == 0 {
                move_to(&mut g, &id, rnd(14) as i64 - 1, rnd(30) as i64, 12);
            } else {
                resize(&mut g, &id, 1 + rnd(13) as i64, 1 + rnd(6) as i64, 12);
            }
            no_overlap(&g, 12);
        }
    }
}
